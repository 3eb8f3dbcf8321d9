import { TabulaError } from '../../../domain/errors.js';
import type { SessionLogEntry } from '../../../domain/session-log.js';
import type { Clock } from '../../../ports/clock.js';
import type { Fields } from '../../../ports/logger.js';
import type { AdminApi } from './admin-api.js';
import type { EventHub } from './events.js';
import { json, type AdminResponse } from './http.js';
import type { Route, RouteContext } from './router.js';
import { filled, flag, matches, poolName, sessionFilter, text, timeouts, wholeNumber, type Body } from './validate.js';
import { overviewOf, sessionEntryView } from './views.js';

export interface ApiRoutesDeps {
  readonly api: AdminApi;
  readonly events: EventHub;
  readonly clock: Clock;
  /** The session log as CSV (render/session-csv.ts, as tabulactl writes it). */
  readonly renderCsv: (entries: readonly SessionLogEntry[]) => string;
  /** The largest size a pool may be given. */
  readonly maxPoolSize: number;
}

/** The sessions page shows this many of the newest entries; the CSV has them all. */
export const SESSIONS_SHOWN = 2000;

export const ok = (value: unknown = {}) => json(200, value);

/** An admin action: one SupervisorApi call with the body's checked arguments; what to log comes back with the answer. */
export function action(path: string, name: string, run: (body: Body) => Promise<{ log: Fields; value?: unknown }>): Route {
  return {
    method: 'POST',
    path,
    action: name,
    handle: async ({ body }: RouteContext) => {
      const { log, value } = await run(body());
      return { response: ok(value), log };
    },
  };
}

export function get(path: string, handle: (ctx: RouteContext) => Promise<AdminResponse>): Route {
  return { method: 'GET', path, handle };
}

/** Everything the logged-in page reads and does; each maps to one SupervisorApi call. */
export function apiRoutes({ api, events, clock, renderCsv, maxPoolSize }: ApiRoutesDeps): Route[] {
  const whitelist = () => {
    if (!api.whitelist) throw new TabulaError('not-found', 'no VM network is configured ([vm_network]), so there is no whitelist');
    return api.whitelist;
  };
  const sessionLog = async (query: URLSearchParams) => {
    const filter = sessionFilter(query, clock.now());
    return { filter, entries: (await api.sessions(filter.since)).filter((e) => matches(e, filter)) };
  };
  return [
    get('/api/overview', async () => ok({ ...overviewOf(api.status()), now: clock.now() })),
    {
      method: 'GET',
      path: '/api/events',
      handle: async ({ login }) => ({ kind: 'events', open: (sink) => events.open(login?.id ?? '', sink) }),
    },
    get('/api/stations', async () => ok({ stations: await api.stations(), now: clock.now() })),
    get('/api/sessions', async ({ req }) => {
      const { filter, entries } = await sessionLog(req.query);
      const newest = entries.slice(-SESSIONS_SHOWN).reverse();
      return ok({ since: filter.since, total: entries.length, entries: newest.map(sessionEntryView) });
    }),
    get('/api/sessions.csv', async ({ req }) => {
      const { entries } = await sessionLog(req.query);
      const stamp = new Date(clock.now()).toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
      return { kind: 'body', status: 200, type: 'text/csv; charset=utf-8', body: renderCsv(entries), headers: { 'Content-Disposition': `attachment; filename="tabula-sessions-${stamp}.csv"` } };
    }),
    get('/api/history', async () => {
      if (!api.history) throw new TabulaError('not-found', 'this supervisor keeps no history');
      return ok(api.history());
    }),
    get('/api/whitelist', async () => ok({ entries: whitelist().list() })),

    action('/api/whitelist/add', 'whitelist-add', async (b) => {
      const entry = filled(b, 'entry', 253);
      return { log: { entry }, value: { entries: await whitelist().add(entry) } };
    }),
    action('/api/whitelist/remove', 'whitelist-remove', async (b) => {
      const entry = filled(b, 'entry', 253);
      return { log: { entry }, value: { entries: await whitelist().remove(entry) } };
    }),
    action('/api/sessions/end', 'end-session', async (b) => {
      const session = filled(b, 'session', 128);
      await api.endSession(session);
      return { log: { session } };
    }),
    action('/api/vms/recycle', 'recycle', async (b) => {
      const vm = filled(b, 'vm', 128);
      await api.recycle(vm);
      return { log: { vm } };
    }),
    action('/api/pools/drain', 'drain', async (b) => {
      const pool = poolName(b);
      await api.drain(pool);
      return { log: { pool } };
    }),
    action('/api/pools/undrain', 'undrain', async (b) => {
      const pool = poolName(b);
      await api.undrain(pool);
      return { log: { pool } };
    }),
    action('/api/pools/resize', 'resize', async (b) => {
      const pool = poolName(b);
      const size = wholeNumber(b, 'size', 0, maxPoolSize);
      await api.resize(pool, size);
      return { log: { pool, size } };
    }),
    action('/api/pools/timeouts', 'set-timeouts', async (b) => {
      const pool = poolName(b);
      const changes = timeouts(b);
      await api.setTimeouts(pool, changes);
      return { log: { pool, ...changes } };
    }),
    action('/api/reload', 'reload-config', async () => {
      await api.reloadConfig();
      return { log: {} };
    }),
    action('/api/wipe', 'wipe', async (b) => {
      if (!flag(b, 'confirm')) throw new TabulaError('invalid-argument', '"confirm" must be true: a wipe ends every session and destroys every VM');
      const report = await api.wipe();
      return { log: { domains: report.domains, files: report.files, sessions: report.sessions }, value: report };
    }),
    action('/api/factory-reset', 'factory-reset', async (b) => {
      const keepImages = flag(b, 'keepImages');
      const confirm = text(b, 'confirm', 64);
      await api.factoryReset(keepImages, confirm);
      return { log: { keepImages } };
    }),
  ];
}
