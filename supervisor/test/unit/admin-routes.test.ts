import t from 'tap';
import { AdminSiteApi } from '../../src/api/http/admin/admin-site.js';
import { SESSION_COOKIE } from '../../src/api/http/admin/cookies.js';
import { CSRF_HEADER } from '../../src/api/http/admin/router.js';
import type { SupervisorStatus } from '../../src/app/reconciler.js';
import { TabulaError } from '../../src/domain/errors.js';
import type { ImageView } from '../../src/domain/golden-store.js';
import type { SessionLogEntry } from '../../src/domain/session-log.js';
import { emptyCounts } from '../../src/domain/status.js';
import type { AdminRequest, AdminResponse, AdminUpload, EventSink } from '../../src/ports/admin-http.js';
import type { CredentialStore, PasswordHasher } from '../../src/ports/admin-credentials.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeSupervisorApi } from '../fakes/fake-supervisor-api.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const PASSWORD = 'a good long password';
const hasher: PasswordHasher = { hash: async (pw) => `plain:${pw}`, verify: async (pw, stored) => stored === `plain:${pw}` };

/** `record`: the stored password record; null: none set yet. */
function world(record: string | null = `plain:${PASSWORD}`) {
  const api = new FakeSupervisorApi();
  const clock = new FakeClock();
  const logger = new MemoryLogger();
  const store: CredentialStore = { load: async () => record ?? undefined, save: async (r) => void (record = r) };
  let n = 0;
  const site = new AdminSiteApi({ api, clock, logger, newSecret: () => `tok${++n}`, hasher, store, renderCsv: (es) => es.map((e) => e.session).join('\n'), maxPoolSize: 64, idleMs: 30 * 60_000 });
  const started = site.start();
  return { api, clock, logger, site, started };
}

interface Options {
  body?: unknown;
  cookie?: string;
  csrf?: string;
  headers?: Record<string, string>;
  secure?: boolean;
  /** A body left on the wire (an upload; sent as application/octet-stream). */
  upload?: AdminUpload;
}

function call(site: AdminSiteApi, method: string, target: string, o: Options = {}): Promise<AdminResponse> {
  const url = new URL(target, 'https://admin.test');
  const headers: Record<string, string> = { host: 'admin.test', ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...(o.headers ?? {}) };
  if (o.cookie) headers['cookie'] = `${SESSION_COOKIE}=${o.cookie}`;
  if (o.csrf) headers[CSRF_HEADER] = o.csrf;
  if (o.upload) headers['content-type'] = o.headers?.['content-type'] ?? 'application/octet-stream';
  const req: AdminRequest = { method, path: url.pathname, query: url.searchParams, headers, body: o.body === undefined ? '' : JSON.stringify(o.body), remote: '192.0.2.50', secure: o.secure ?? true, ...(o.upload ? { upload: o.upload } : {}) };
  return site.handle(req);
}

function bodyOf(r: AdminResponse): { status: number; json: Record<string, unknown>; headers: Record<string, string> } {
  if (r.kind !== 'body') throw new Error('expected a body, got an event stream');
  return { status: r.status, json: r.type.startsWith('application/json') ? (JSON.parse(r.body) as Record<string, unknown>) : { text: r.body }, headers: { ...(r.headers ?? {}) } };
}

/** Logs in; the cookie and CSRF token to use. */
async function login(site: AdminSiteApi): Promise<{ cookie: string; csrf: string }> {
  const r = bodyOf(await call(site, 'POST', '/api/login', { body: { password: PASSWORD } }));
  const cookie = /tabula_admin=([^;]*)/.exec(r.headers['Set-Cookie'] ?? '')?.[1] ?? '';
  return { cookie, csrf: String(r.json['csrf']) };
}

const STATUS: SupervisorStatus = {
  state: 'ready',
  reason: '',
  line: 'desk: 1/2 clean, 1 in-use',
  pools: [
    {
      name: 'desk',
      size: 2,
      counts: { ...emptyCounts(), clean: 1, 'in-use': 1 },
      healthy: true,
      healthReason: '',
      drained: false,
      vms: [
        { name: 'tabula-desk-0', uuid: 'u0', pool: 'desk', slot: 0, state: 'clean', active: true, stateSince: 1 },
        { name: 'tabula-desk-1', uuid: 'u1', pool: 'desk', slot: 1, state: 'in-use', active: true, stateSince: 2, session: { id: 'sess-1', station: '169.254.24.10', protocol: 'v1', handedAt: 2 } },
      ],
    },
  ],
};

t.test('first use: the page learns a password is needed, sets it, and is logged in', async (t) => {
  const { site } = world(null);
  t.match(bodyOf(await call(site, 'GET', '/api/session')).json, { passwordSet: false, loggedIn: false, minPasswordLength: 10 });
  const refused = bodyOf(await call(site, 'POST', '/api/setup', { body: { password: 'short', repeat: 'short' } }));
  t.equal(refused.status, 400);
  t.same(refused.json, { error: { code: 'invalid-argument', message: 'the password is too short: at least 10 characters' } });
  const r = bodyOf(await call(site, 'POST', '/api/setup', { body: { password: PASSWORD, repeat: PASSWORD } }));
  t.equal(r.status, 200);
  t.match(r.headers['Set-Cookie'], /HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
  const again = bodyOf(await call(site, 'POST', '/api/setup', { body: { password: PASSWORD, repeat: PASSWORD } }));
  t.equal(again.status, 409, 'set-up only once');
});

t.test('nothing but the login is served without a login', async (t) => {
  const { site, api } = world();
  for (const [method, path] of [
    ['GET', '/api/overview'],
    ['GET', '/api/events'],
    ['GET', '/api/sessions'],
    ['POST', '/api/wipe'],
    ['POST', '/api/sessions/end'],
  ] as const) {
    const r = bodyOf(await call(site, method, path, { body: { confirm: true, session: 'x' } }));
    t.equal(r.status, 401, `${method} ${path}`);
    t.match(r.json, { error: { code: 'access-denied', message: /not logged in/ } });
  }
  t.same(api.calls, [], 'the API was never called');
  const wrong = bodyOf(await call(site, 'POST', '/api/login', { body: { password: 'wrong password' } }));
  t.equal(wrong.status, 401);
  t.match(wrong.json, { error: { code: 'access-denied', message: 'wrong password' } });
  t.equal(bodyOf(await call(site, 'GET', '/api/overview', { cookie: 'made-up' })).status, 401, 'a made-up cookie is no login');
});

t.test('a POST needs JSON, no foreign Origin, and the login\'s CSRF token', async (t) => {
  const { site, api, logger } = world();
  const { cookie, csrf } = await login(site);
  const noToken = bodyOf(await call(site, 'POST', '/api/pools/drain', { cookie, body: { pool: 'desk' } }));
  t.equal(noToken.status, 403);
  t.match(noToken.json, { error: { code: 'access-denied', message: /x-tabula-csrf/ } });
  t.equal(logger.find('admin-request-refused').length, 1);
  t.equal(bodyOf(await call(site, 'POST', '/api/pools/drain', { cookie, csrf: 'tok999', body: { pool: 'desk' } })).status, 403, 'another token');
  const form = bodyOf(await call(site, 'POST', '/api/pools/drain', { cookie, csrf, body: { pool: 'desk' }, headers: { 'content-type': 'application/x-www-form-urlencoded' } }));
  t.equal(form.status, 415, 'what an HTML form sends');
  const foreign = bodyOf(await call(site, 'POST', '/api/pools/drain', { cookie, csrf, body: { pool: 'desk' }, headers: { origin: 'https://evil.example' } }));
  t.equal(foreign.status, 403);
  t.match(foreign.json, { error: { message: 'requests from https://evil.example are not accepted' } });
  t.same(api.calls, [], 'none reached the API');
  const ok = bodyOf(await call(site, 'POST', '/api/pools/drain', { cookie, csrf, body: { pool: 'desk' }, headers: { origin: 'https://admin.test' } }));
  t.equal(ok.status, 200, 'the page itself');
  t.same(api.calls, [['drain', 'desk']]);
});

t.test('each action is one call of the API with the checked arguments, logged once', async (t) => {
  const { site, api, logger } = world();
  const auth = await login(site);
  const cases: Array<[string, unknown, unknown[]]> = [
    ['/api/sessions/end', { session: 'sess-1' }, ['endSession', 'sess-1']],
    ['/api/vms/recycle', { vm: 'tabula-desk-0' }, ['recycle', 'tabula-desk-0']],
    ['/api/pools/drain', { pool: 'desk' }, ['drain', 'desk']],
    ['/api/pools/undrain', { pool: 'desk' }, ['undrain', 'desk']],
    ['/api/pools/resize', { pool: 'desk', size: 3 }, ['resize', 'desk', 3]],
    ['/api/pools/timeouts', { pool: 'desk', idle_timeout: 600, boot_timeout: null }, ['setTimeouts', 'desk', { idle_timeout: 600 }]],
    ['/api/reload', {}, ['reloadConfig']],
    ['/api/wipe', { confirm: true }, ['wipe']],
    ['/api/factory-reset', { keepImages: true, confirm: 'factory-reset' }, ['factoryReset', true, 'factory-reset']],
    ['/api/whitelist/add', { entry: ' intranet.example ' }, ['whitelist.add', 'intranet.example']],
    ['/api/whitelist/remove', { entry: 'example.org' }, ['whitelist.remove', 'example.org']],
  ];
  for (const [path, body, expected] of cases) {
    api.calls.length = 0;
    const r = bodyOf(await call(site, 'POST', path, { ...auth, body }));
    t.equal(r.status, 200, `${path}: 200`);
    t.same(api.calls, [expected], `${path}: ${String(expected[0])}`);
  }
  t.equal(logger.find('admin-action').length, cases.length, 'one admin-action record per action');
  t.match(logger.find('admin-action').find((r) => r.fields['action'] === 'resize'), { level: 'notice', fields: { pool: 'desk', size: 3, address: '192.0.2.50' } });
  const wipe = bodyOf(await call(site, 'POST', '/api/wipe', { ...auth, body: { confirm: true } }));
  t.same(wipe.json, { domains: 2, files: 3, sessions: 1 }, 'what the wipe removed');
  const add = bodyOf(await call(site, 'POST', '/api/whitelist/add', { ...auth, body: { entry: 'b.example' } }));
  t.same(add.json, { entries: ['intranet.example', 'b.example'] }, 'the whitelist as it is now');
});

t.test('bad requests: a clear error naming what is wrong, and no call', async (t) => {
  const { site, api } = world();
  const auth = await login(site);
  const cases: Array<[string, unknown, RegExp]> = [
    ['/api/pools/resize', { pool: 'desk', size: 65 }, /"size" must be between 0 and 64, not 65/],
    ['/api/pools/resize', { pool: 'desk', size: 'two' }, /"size" must be a whole number/],
    ['/api/pools/timeouts', { pool: 'desk', idle_timeout: 86_401 }, /^idle_timeout must be from 0 to 86400 seconds \(0: never\), not 86401$/],
    ['/api/pools/timeouts', { pool: 'desk', max_session: 60, boot_timeout: 0 }, /^boot_timeout must be more than 0 and at most 86400 seconds, not 0$/],
    ['/api/pools/timeouts', { pool: 'desk', session_warning: '60' }, /^session_warning must be a number of seconds/],
    ['/api/pools/timeouts', { pool: 'desk', size: 3 }, /no timeout given: set one or more of idle_timeout, max_session, session_warning, boot_timeout/],
    ['/api/pools/drain', { pool: 'No Such!' }, /"pool": "No Such!" is not a pool name/],
    ['/api/wipe', {}, /"confirm" must be true or false/],
    ['/api/wipe', { confirm: false }, /"confirm" must be true: a wipe ends every session/],
    ['/api/factory-reset', { confirm: 'factory-reset' }, /"keepImages" must be true or false/],
    ['/api/sessions/end', { session: '' }, /"session" is empty/],
    ['/api/whitelist/add', {}, /"entry" is missing or not a string/],
  ];
  for (const [path, body, message] of cases) {
    const r = bodyOf(await call(site, 'POST', path, { ...auth, body }));
    t.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
    t.match(r.json, { error: { code: 'invalid-argument', message } });
  }
  const notJson = await site.handle({ method: 'POST', path: '/api/reload', query: new URLSearchParams(), headers: { host: 'admin.test', 'content-type': 'application/json', cookie: `${SESSION_COOKIE}=${auth.cookie}`, [CSRF_HEADER]: auth.csrf }, body: '{', remote: 'x', secure: true });
  t.match(bodyOf(notJson), { status: 400, json: { error: { message: 'the request body is not valid JSON' } } });
  t.same(api.calls, []);
  t.match(bodyOf(await call(site, 'GET', '/api/nope', auth)), { status: 404, json: { error: { code: 'not-found', message: 'no such API: /api/nope' } } });
  const wrongMethod = bodyOf(await call(site, 'GET', '/api/wipe', auth));
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.headers['Allow'], 'POST');
});

t.test('errors from the API keep their code, with an HTTP status to match, and are logged once', async (t) => {
  const { site, api, logger } = world();
  const auth = await login(site);
  const cases: Array<[string, string, unknown, TabulaError, number]> = [
    ['endSession', '/api/sessions/end', { session: 'gone' }, new TabulaError('not-found', 'no session "gone" is under way'), 404],
    ['wipe', '/api/wipe', { confirm: true }, new TabulaError('conflict', 'a wipe is already under way'), 409],
    ['reloadConfig', '/api/reload', {}, new TabulaError('config-invalid', '/etc/tabula/supervisor.toml: line 3: pool[0].size: too big'), 422],
    ['factoryReset', '/api/factory-reset', { keepImages: false, confirm: 'yes' }, new TabulaError('invalid-argument', 'the confirmation must be the words "factory-reset"'), 400],
    ['whitelist.add', '/api/whitelist/add', { entry: '10.0.0.0/8' }, new TabulaError('invalid-argument', 'whitelist entry "10.0.0.0/8" overlaps the VM subnet'), 400],
    ['drain', '/api/pools/drain', { pool: 'desk' }, new TabulaError('internal', 'boom'), 500],
  ];
  for (const [method, path, body, error, status] of cases) {
    api.fail(method, error);
    const r = bodyOf(await call(site, 'POST', path, { ...auth, body }));
    t.equal(r.status, status, `${error.code}: ${status}`);
    t.same(r.json, { error: { code: error.code, message: error.message } });
  }
  t.equal(logger.find('admin-action-refused').length, cases.length);
  t.equal(logger.find('admin-action').length, 0, 'a refused action is not logged as done');
});

t.test('reads: overview, stations, session log with filters, CSV, history, images, whitelist', async (t) => {
  const { site, api, clock } = world();
  const auth = await login(site);
  api.current = STATUS;
  const ov = bodyOf(await call(site, 'GET', '/api/overview', auth)).json;
  t.match(ov, { state: 'ready', now: clock.now(), pools: [{ name: 'desk', vms: [{ state: 'clean' }, { state: 'in-use', session: 'sess-1' }] }], sessions: [{ id: 'sess-1', pool: 'desk', vm: 'tabula-desk-1' }] });

  const ended = (session: string, pool: string, reason: string, endedAt: number): SessionLogEntry => ({ session, station: { address: '169.254.24.10' }, pool, vm: `tabula-${pool}-0`, protocol: 'v1', requestedAt: endedAt - 9000, handedAt: endedAt - 8000, connectedAt: endedAt - 7000, endedAt, reason });
  const now = clock.now();
  api.log = [ended('old', 'desk', 'idle', now - 3 * 86_400_000), ended('a', 'desk', 'idle', now - 2000), ended('b', 'lab', 'admin', now - 1000)];
  const day = bodyOf(await call(site, 'GET', '/api/sessions', auth)).json;
  t.match(day, { total: 2, entries: [{ session: 'b', waitMs: 1000, sessionMs: 7000 }, { session: 'a' }] }, 'the last day, newest first, with durations');
  t.equal(api.calls.find((c) => c[0] === 'sessions')?.[1], now - 86_400_000, 'asked the API for the last day');
  t.match(bodyOf(await call(site, 'GET', '/api/sessions?pool=lab', auth)).json, { total: 1, entries: [{ session: 'b' }] });
  t.match(bodyOf(await call(site, 'GET', `/api/sessions?since=0&reason=idle`, auth)).json, { total: 2, entries: [{ session: 'a' }, { session: 'old' }] });
  t.match(bodyOf(await call(site, 'GET', '/api/sessions?since=soon', auth)), { status: 400, json: { error: { message: /since: "soon" is not a time/ } } });
  const csv = await call(site, 'GET', '/api/sessions.csv?reason=admin', auth);
  t.match(csv, { kind: 'body', status: 200, type: 'text/csv; charset=utf-8', body: 'b', headers: { 'Content-Disposition': /^attachment; filename="tabula-sessions-\d{8}-\d{4}\.csv"$/ } });

  api.stationList = [{ address: '169.254.24.10', mac: '52:54:00:00:00:01', name: 'hall', lastSeen: 1, leaseExpires: 2 }];
  t.match(bodyOf(await call(site, 'GET', '/api/stations', auth)).json, { stations: [{ name: 'hall' }] });
  t.match(bodyOf(await call(site, 'GET', '/api/whitelist', auth)).json, { entries: ['example.org'] });
  t.match(bodyOf(await call(site, 'GET', '/api/history', auth)), { status: 404, json: { error: { code: 'not-found' } } }, 'no history without the member');
  api.history = () => ({ minuteMs: 60_000, pools: [{ name: 'desk', samples: [] }] });
  t.same(bodyOf(await call(site, 'GET', '/api/history', auth)).json, { minuteMs: 60_000, pools: [{ name: 'desk', samples: [] }] });
  t.match(bodyOf(await call(site, 'GET', '/api/images', auth)), { status: 404, json: { error: { message: /keeps no image store/ } } }, 'no images without the store (admin-image-routes.test.ts has the rest)');
});

t.test('without a VM network, the whitelist is "not found", saying why', async (t) => {
  const { site, api } = world();
  const auth = await login(site);
  (api as { whitelist?: unknown }).whitelist = undefined;
  for (const [method, path] of [
    ['GET', '/api/whitelist'],
    ['POST', '/api/whitelist/add'],
  ] as const) {
    const r = bodyOf(await call(site, method, path, { ...auth, body: { entry: 'x.example' } }));
    t.equal(r.status, 404);
    t.match(r.json, { error: { code: 'not-found', message: /no VM network is configured/ } });
  }
});

/** An event stream opened through the routes, collecting what it is sent. */
async function stream(site: AdminSiteApi, auth: { cookie: string }) {
  const r = await call(site, 'GET', '/api/events', auth);
  if (r.kind !== 'events') throw new Error('not an event stream');
  const sent: string[] = [];
  let closed = false;
  const sink: EventSink = { send: (text) => void sent.push(text), close: () => void (closed = true) };
  const handle = r.open(sink);
  const events = () => sent.filter((x) => x.startsWith('event: ')).map((x) => ({ event: x.split('\n')[0]?.slice(7), data: JSON.parse(x.split('\n')[1]?.slice(6) ?? 'null') as Record<string, unknown> }));
  return { sent, events, isClosed: () => closed, handle };
}

t.test('live events: the overview at once, then only real changes, and sessions as they start and end', async (t) => {
  const { site, api } = world();
  const auth = await login(site);
  api.current = STATUS;
  const s = await stream(site, auth);
  t.equal(s.sent[0], 'retry: 3000\n\n');
  t.match(s.events(), [{ event: 'overview', data: { line: STATUS.line } }]);
  api.publish({ ...STATUS, line: 'desk: 2/2 clean' });
  api.publish({ ...STATUS, line: 'desk: 2/2 clean' });
  t.equal(s.events().length, 2, 'the same status twice is sent once');
  api.started({ session: 'sess-2', station: '169.254.24.11', stationName: 'lobby', pool: 'desk', vm: 'tabula-desk-0' });
  api.ended({ session: 'sess-1', station: { address: '169.254.24.10' }, pool: 'desk', vm: 'tabula-desk-1', protocol: 'v1', handedAt: 0, connectedAt: 1000, endedAt: 5000, reason: 'admin' });
  t.match(s.events().slice(2), [
    { event: 'session-started', data: { session: 'sess-2', stationName: 'lobby', vm: 'tabula-desk-0' } },
    { event: 'session-ended', data: { session: 'sess-1', reason: 'admin', sessionMs: 4000 } },
  ]);
  s.handle.dispose();
  api.publish({ ...STATUS, line: 'changed again' });
  t.equal(s.events().length, 4, 'a closed stream hears nothing more');
});

t.test('event streams end with their login: at logout, and at the heartbeat once it expired', async (t) => {
  const { site, clock, started, api } = world();
  const a = await login(site);
  const b = await login(site);
  const sa = await stream(site, a);
  const sb = await stream(site, b);
  await call(site, 'POST', '/api/logout', { ...a, body: {} });
  t.ok(sa.isClosed(), "the logged-out login's stream is closed");
  t.notOk(sb.isClosed(), 'the other one goes on');
  site.heartbeat();
  t.equal(sb.sent.at(-1), ': keep-alive\n\n');
  clock.advance(30 * 60_000);
  site.heartbeat();
  t.ok(sb.isClosed(), 'idle for the whole idle time: closed at the heartbeat');
  started.dispose();
  api.publish({ ...STATUS, line: 'after stop' });
  t.equal(bodyOf(await call(site, 'GET', '/api/overview', b)).status, 401, 'and the login is gone');
});

/** The image store's part of the API over plain values, each call recorded in the fake's `calls`. */
function withImages(api: FakeSupervisorApi): ImageView[] {
  const images: ImageView[] = [{ name: 'win.qcow2', path: '/var/lib/tabula/images/win.qcow2', stored: true, format: 'qcow2', currentOf: ['desk'], previousOf: [], liveVms: 2, sha256: 'ab'.repeat(32) }];
  const record = (...call: unknown[]) => void api.calls.push(call);
  api.images = {
    list: async () => images,
    import: async () => {
      throw new Error('not from the page');
    },
    use: async (pool, name) => record('images.use', pool, name),
    rollback: async (pool) => record('images.rollback', pool),
    checkUpload: async (name, bytes) => record('images.checkUpload', name, bytes),
    upload: async (req) => {
      const written = await req.upload.writeTo('/var/lib/tabula/images/.x.importing', () => undefined, new AbortController().signal);
      record('images.upload', req.name, req.upload.bytes);
      return { name: req.name, path: `/var/lib/tabula/images/${req.name}`, format: 'qcow2', virtualSize: 2 ** 30, bytes: written.bytes, sha256: written.sha256 };
    },
  };
  return images;
}

/** A body on the wire of `length` bytes (undefined: no Content-Length); notes whether it was read. */
function wire(length: number | undefined): AdminUpload & { read: boolean } {
  const u = { length, read: false, writeTo: async () => ((u.read = true), { bytes: length ?? 0, sha256: 'cd'.repeat(32) }) };
  return u;
}

t.test('golden images: the list, the switch and the rollback, each one call of the API, logged', async (t) => {
  const { site, api, logger } = world();
  const auth = await login(site);
  const images = withImages(api);
  t.same(bodyOf(await call(site, 'GET', '/api/images', auth)).json, { images });
  t.equal(bodyOf(await call(site, 'POST', '/api/pools/use-image', { ...auth, body: { pool: 'desk', image: 'win.qcow2' } })).status, 200);
  t.equal(bodyOf(await call(site, 'POST', '/api/pools/rollback-image', { ...auth, body: { pool: 'desk' } })).status, 200);
  t.same(api.calls, [
    ['images.use', 'desk', 'win.qcow2'],
    ['images.rollback', 'desk'],
  ]);
  t.match(logger.find('admin-action'), [{ fields: { action: 'image-use', pool: 'desk', image: 'win.qcow2' } }, { fields: { action: 'image-rollback', pool: 'desk' } }]);
  t.match(bodyOf(await call(site, 'POST', '/api/pools/use-image', { ...auth, body: { pool: 'desk' } })), { status: 400, json: { error: { message: '"image" is missing or not a string' } } });
  api.images = { ...api.images!, use: async () => Promise.reject(new TabulaError('golden-image-invalid', 'golden image /x is vmdk, not qcow2 or raw')) };
  t.match(bodyOf(await call(site, 'POST', '/api/pools/use-image', { ...auth, body: { pool: 'desk', image: 'x' } })), { status: 422, json: { error: { code: 'golden-image-invalid', message: /is vmdk/ } } });
});

t.test('an upload: a file body with its name and length, streamed by the API; the same checks as every POST', async (t) => {
  const { site, api, logger } = world();
  const auth = await login(site);
  withImages(api);
  const body = wire(3 * 2 ** 20);
  const r = bodyOf(await call(site, 'POST', '/api/images/upload?name=win-2025.qcow2', { ...auth, upload: body }));
  t.match(r, { status: 200, json: { image: { name: 'win-2025.qcow2', bytes: 3 * 2 ** 20, sha256: 'cd'.repeat(32) } } });
  t.ok(body.read, 'the body was streamed by the API');
  t.same(api.calls, [['images.upload', 'win-2025.qcow2', 3 * 2 ** 20]]);
  t.match(logger.find('admin-action'), [{ fields: { action: 'image-upload', name: 'win-2025.qcow2', bytes: 3 * 2 ** 20, sha256: 'cd'.repeat(32) } }]);

  api.calls.length = 0;
  const refusals: Array<[string, Options, number, RegExp]> = [
    ['no login', { upload: wire(10) }, 401, /not logged in/],
    ['no CSRF token', { cookie: auth.cookie, upload: wire(10) }, 403, /x-tabula-csrf/],
    ['JSON instead of a file', { ...auth, body: { name: 'x' } }, 415, /must carry Content-Type: application\/octet-stream/],
    ['a file to a JSON route', { ...auth, upload: wire(10) }, 415, /must carry Content-Type: application\/json/],
    ['no name', { ...auth, upload: wire(10) }, 400, /the upload names no image/],
    ['no Content-Length', { ...auth, upload: wire(undefined) }, 400, /has no Content-Length/],
  ];
  for (const [what, o, status, message] of refusals) {
    const path = what === 'a file to a JSON route' ? '/api/pools/drain' : what === 'no name' ? '/api/images/upload' : '/api/images/upload?name=x.qcow2';
    const res = bodyOf(await call(site, 'POST', path, o));
    t.match(res, { status, json: { error: { message } } }, what);
    t.notOk(o.upload?.length !== undefined && (o.upload as { read?: boolean }).read, `${what}: the body is not read`);
  }
  t.same(api.calls, [], 'none reached the API');

  for (const [code, status] of [['disk-full', 507], ['conflict', 409], ['golden-image-invalid', 422], ['disk-failed', 500]] as const) {
    api.images = { ...api.images!, upload: async () => Promise.reject(new TabulaError(code, `refused: ${code}`)) };
    t.match(bodyOf(await call(site, 'POST', '/api/images/upload?name=x.qcow2', { ...auth, upload: wire(10) })), { status, json: { error: { code, message: `refused: ${code}` } } }, `${code}: ${status}`);
  }
  t.match(logger.find('admin-action-refused').at(-1), { fields: { action: 'image-upload', code: 'disk-failed' } }, 'a refused upload is logged with its code');
});

t.test('asked before an upload: the name and size are checked by the API, nothing is sent', async (t) => {
  const { site, api } = world();
  const auth = await login(site);
  withImages(api);
  t.equal(bodyOf(await call(site, 'GET', '/api/images/check-upload?name=win.qcow2&size=1048576', auth)).status, 200);
  t.same(api.calls, [['images.checkUpload', 'win.qcow2', 1048576]]);
  t.match(bodyOf(await call(site, 'GET', '/api/images/check-upload?name=win.qcow2&size=lots', auth)), { status: 400, json: { error: { message: '"size" must be the file\'s size in bytes, not "lots"' } } });
  t.match(bodyOf(await call(site, 'GET', '/api/images/check-upload?size=1', auth)), { status: 400, json: { error: { message: /names no image/ } } });
  api.images = { ...api.images!, checkUpload: async () => Promise.reject(new TabulaError('disk-full', 'disk full: /var/lib/tabula/images has 10 MiB free')) };
  t.match(bodyOf(await call(site, 'GET', '/api/images/check-upload?name=big&size=99999999', auth)), { status: 507, json: { error: { code: 'disk-full', message: /has 10 MiB free/ } } });
});
