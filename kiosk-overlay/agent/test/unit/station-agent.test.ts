// The station agent's whole life on fakes: a scripted server (FakeServerLink),
// a screen the test touches, a viewer the test makes exit, and a clock that
// moves only when the test says so. The one real timer is ScreenEvents' (the
// menu timeout, blank_after), kept at a few ms.
import { getEventListeners } from 'node:events';
import t, { type Test } from 'tap';
import { StationAgent } from '../../src/app/station-agent.js';
import { describeEnd, SCREEN_TEXT } from '../../src/app/texts.js';
import { buildStationConfig } from '../../src/config/station-conf.js';
import type { StationConfig } from '../../src/config/station-config.js';
import { StationError } from '../../src/domain/errors.js';
import { FakeActivity } from '../fakes/fake-activity.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeKioskUser } from '../fakes/fake-kiosk-user.js';
import { FakePictures } from '../fakes/fake-pictures.js';
import { FakeScreen } from '../fakes/fake-screen.js';
import { FakeServerLink, type FakeServerConnection } from '../fakes/fake-server-link.js';
import { FakeRunningViewer, FakeViewer } from '../fakes/fake-viewer.js';
import { MemoryLogger } from '../fakes/memory-logger.js';
import { Trace } from '../fakes/trace.js';

const HELLO = 'TABULA/1 HELLO station=kiosk-3';
const ONE_POOL = 'WELCOME version=1 pools=desktop:0/4 default=desktop';
const TWO_POOLS = 'WELCOME version=1 pools=desktop:3/4,linux:1/2 default=desktop';
const READY = 'READY session=S-1 vm=tabula-desktop-0 host=169.254.24.1 port=5906 ticket=T0p-s3cret expires=10';
const CONNECTED = 'CONNECTED session=S-1';

/** The agent's waits, as station-agent.ts has them. */
const WELCOME_TIMEOUT_MS = 10_000;
const SERVER_SILENCE_MS = 45_000;
const ENDED_WAIT_MS = 3_000;
const REFUSAL_SHOWN_MS = 5_000;

const BASE: StationConfig = buildStationConfig(
  [
    {
      origin: '/etc/tabula/station.conf',
      text: 'server_ip=169.254.24.1\nvdi_signal_port=5905\nvdi_spice_port=5906\nstation_name=kiosk-3\npool_labels=desktop:Windows 10,linux:Debian\n',
      strict: true,
    },
  ],
  'kiosk-3',
);

/** Lets every pending callback of the fakes run (no timers): for "nothing (more) happened" checks. */
async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise<void>((r) => setImmediate(r));
}

interface Prepare {
  readonly kiosk: FakeKioskUser;
  readonly pictures: FakePictures;
}

/** A kiosk: the agent on fakes (`prepare` may set them up before it starts), running until `stop` aborts. */
function kiosk(over: Partial<StationConfig> = {}, prepare: (fakes: Prepare) => void = () => undefined) {
  const trace = new Trace();
  const k = {
    trace,
    config: { ...BASE, ...over } as StationConfig,
    /** Becomes the config at the next refresh (the server's client.conf changed). */
    nextConfig: undefined as StationConfig | undefined,
    refreshes: 0,
    link: new FakeServerLink(trace),
    screen: new FakeScreen(trace),
    viewer: new FakeViewer(trace),
    kiosk: new FakeKioskUser(trace),
    activity: new FakeActivity(trace),
    pictures: new FakePictures(),
    clock: new FakeClock(trace),
    logger: new MemoryLogger(trace),
    stop: new AbortController(),
    done: false,
    run: Promise.resolve(),
  };
  const agent = new StationAgent({
    config: () => k.config,
    refreshConfig: () => {
      k.refreshes++;
      if (k.nextConfig) k.config = k.nextConfig;
      return Promise.resolve();
    },
    link: k.link,
    screen: k.screen,
    viewer: k.viewer,
    kiosk: k.kiosk,
    activity: k.activity,
    pictures: k.pictures,
    clock: k.clock,
    logger: k.logger,
  });
  k.link.server = () => k.config.serverAddress;
  prepare(k);
  k.run = agent.run(k.stop.signal).then(() => {
    k.done = true;
    trace.changed();
  });
  return k;
}
type Kiosk = ReturnType<typeof kiosk>;

/** A touch once the slideshow is on; `nextView` then looks only at what comes after it. */
async function tapScreen(k: Kiosk): Promise<void> {
  await k.trace.until(() => k.screen.current?.kind === 'slideshow');
  k.screen.mark();
  k.screen.touch();
}

/** The slideshow, a touch, and the connection the agent opens. */
async function touch(k: Kiosk): Promise<FakeServerConnection> {
  await tapScreen(k);
  return k.link.nextConnection();
}

/** A touch, HELLO answered with `welcome`; returns once the agent asked for a VM. */
async function requested(t: Test, k: Kiosk, welcome = ONE_POOL, request = 'REQUEST pool=desktop'): Promise<FakeServerConnection> {
  const conn = await touch(k);
  t.equal(await conn.nextSent(), HELLO, 'hello');
  conn.push(welcome);
  t.equal(await conn.nextSent(), request, 'the request');
  return conn;
}

/** A session under way: READY, the viewer started, CONNECTED logged. */
async function connected(t: Test, k: Kiosk): Promise<{ conn: FakeServerConnection; viewer: FakeRunningViewer }> {
  const conn = await requested(t, k);
  conn.push(READY);
  const viewer = await k.viewer.nextLaunch();
  conn.push(CONNECTED);
  await k.logger.logged('session-connected', k.logger.find('session-connected').length + 1);
  return { conn, viewer };
}

/** Back on the slideshow after a visit: the visit's end as logged. */
async function backToSlideshow(k: Kiosk, visits = 1): Promise<{ reason: unknown; detail: unknown }> {
  const end = await k.logger.logged('visit-ended', visits);
  await k.screen.nextView('slideshow');
  return { reason: end.fields.reason, detail: end.fields.detail };
}

/** Stops the agent on the slideshow and waits for run() to end. */
async function shutDown(t: Test, k: Kiosk): Promise<void> {
  k.stop.abort();
  await k.run;
  t.equal(k.screen.stops, 1, 'the screen was stopped');
}

t.test('a whole visit: cleanup and slideshow, touch, one pool, queue, desktop, input, warnings, ENDED idle', async (t) => {
  const k = kiosk();
  const slides = await k.screen.nextView('slideshow');
  t.same(slides, { kind: 'slideshow', images: k.pictures.slides, intervalS: 8, prompt: 'Touch the screen or press a key to start' });
  t.same(k.trace.events, ['kiosk:endAll', 'show:slideshow'], 'first a cleanup, then the slideshow');
  t.equal(k.link.attempts, 0, 'no connection before a touch');

  k.screen.touch();
  const conn = await k.link.nextConnection();
  t.equal(k.refreshes, 1, "the server's client.conf is read again before the visit");
  t.same(await k.screen.nextView('waiting'), { kind: 'waiting', images: k.pictures.frames, intervalS: 1, message: SCREEN_TEXT.preparing });
  t.equal(await conn.nextSent(), HELLO);

  conn.push(ONE_POOL);
  t.equal(await conn.nextSent(), 'REQUEST pool=desktop');
  t.notOk(
    k.screen.views.some((v) => v.kind === 'menu'),
    'one pool: no menu',
  );

  conn.push('QUEUED position=2');
  t.same(await k.screen.nextView('waiting'), { kind: 'waiting', images: k.pictures.frames, intervalS: 1, message: SCREEN_TEXT.preparing, position: 2 });
  conn.push('QUEUED position=1');
  t.equal((await k.screen.nextView('waiting')).position, 1, 'the new place in the queue');

  conn.push(READY);
  const viewer = await k.viewer.nextLaunch();
  t.same(viewer.launch, { host: '169.254.24.1', port: 5906, password: 'T0p-s3cret', title: 'Tabula' }, 'the viewer gets host, port and the ticket');
  t.same(await k.screen.nextView('message'), { kind: 'message', title: SCREEN_TEXT.starting, detail: '' });
  t.equal(k.activity.starts, 1, 'activity is watched during the session');
  t.equal(k.activity.everyMs, 5000, 'at most every input_report_interval');

  conn.push(CONNECTED);
  await k.logger.logged('session-connected');

  k.activity.input();
  t.equal(await conn.nextSent(), 'INPUT', 'activity is reported');

  conn.push('WARN session=S-1 reason=idle seconds=30');
  t.same(await k.screen.nextCountdown(), { reason: 'idle', seconds: 30, message: SCREEN_TEXT.countdown('idle') }, 'the countdown');
  conn.push('WARN session=S-1 reason=none');
  t.equal(await k.screen.nextCountdown(), null, 'reason=none: the countdown is off');
  conn.push('WARN session=S-1 reason=time-limit seconds=60');
  t.same(await k.screen.nextCountdown(), { reason: 'time-limit', seconds: 60, message: SCREEN_TEXT.countdown('time-limit') });

  conn.push('ERR 400 bad-request');
  conn.push('PONG');
  conn.push('QUEUED position=1');
  conn.push('SOMETHING new=1');
  await k.logger.logged('server-unexpected');
  t.ok(viewer.running, 'an error or an odd line during the session does not end it');
  t.equal(k.logger.find('server-error-in-session').length, 1);

  conn.push('ENDED session=S-1 reason=idle');
  t.same(await backToSlideshow(k), { reason: 'idle', detail: undefined });
  t.same(k.screen.views.filter((v) => v.kind === 'message').at(-1), { kind: 'message', title: SCREEN_TEXT.ended, detail: describeEnd('idle') });
  t.equal(viewer.stops, 1, 'the viewer was stopped');
  t.ok(conn.closedByStation, 'the connection was closed');
  t.equal(k.activity.stops, 1, 'activity is no longer watched');
  t.equal(k.screen.countdowns.at(-1), null, 'no countdown left');
  t.equal(k.kiosk.endAllCalls, 2, 'the kiosk account was cleaned up');
  t.same(k.trace.of('viewer:stop', 'kiosk:', 'show:slideshow').slice(-3), ['viewer:stop', 'kiosk:endAll', 'show:slideshow'], 'viewer stopped, then cleanup, then slideshow');
  t.same(conn.sent, [HELLO, 'REQUEST pool=desktop', 'INPUT'], 'everything the station said');
  t.same(k.link.timeouts, [5000], 'one connection');

  await shutDown(t, k);
  t.equal(k.kiosk.endAllCalls, 2, 'stopping on the slideshow needs no cleanup');
});

t.test('two pools and no pool configured: the menu with the labels, then the chosen pool', async (t) => {
  const k = kiosk();
  const conn = await touch(k);
  t.equal(await conn.nextSent(), HELLO);
  conn.push('WELCOME version=1 pools=desktop:3/4,linux:1/2,lab:0/1 default=desktop');
  const menu = await k.screen.nextView('menu');
  t.same(menu, {
    kind: 'menu',
    title: SCREEN_TEXT.menuTitle,
    pools: [
      { name: 'desktop', label: 'Windows 10', ready: 3 },
      { name: 'linux', label: 'Debian', ready: 1 },
      { name: 'lab', label: 'lab', ready: 0 },
    ],
  });
  k.screen.touch();
  await settle();
  t.same(conn.sent, [HELLO], 'nothing asked while the menu waits; a touch is no choice');
  t.ok(conn.closedByStation, 'the connection is let go while the visitor chooses (the server waits for REQUEST only 45 s)');

  k.screen.choose('linux');
  const ask = await k.link.nextConnection();
  t.equal(await ask.nextSent(), HELLO, 'a new connection for the choice');
  ask.push('WELCOME version=1 pools=desktop:3/4,linux:1/2,lab:0/1 default=desktop');
  t.equal(await ask.nextSent(), 'REQUEST pool=linux');
  t.same(await k.screen.nextView('waiting'), { kind: 'waiting', images: k.pictures.frames, intervalS: 1, message: SCREEN_TEXT.preparing });

  ask.push('READY session=S-2 vm=tabula-linux-0 host=169.254.24.1 port=5906 ticket=lin expires=10');
  const viewer = await k.viewer.nextLaunch();
  t.equal(viewer.launch.password, 'lin');
  ask.push('CONNECTED session=S-2', 'ENDED session=S-2 reason=admin');
  t.same(await backToSlideshow(k), { reason: 'admin', detail: undefined });
  await shutDown(t, k);
});

t.test('a pool configured: no menu even when the server offers several', async (t) => {
  const k = kiosk({ pool: 'linux' });
  const conn = await requested(t, k, TWO_POOLS, 'REQUEST pool=linux');
  t.notOk(k.screen.views.some((v) => v.kind === 'menu'));
  conn.push('ERR 503 try-again');
  await k.clock.wake(REFUSAL_SHOWN_MS);
  await backToSlideshow(k);
  await shutDown(t, k);
});

t.test('the menu times out: back to the slideshow without a request', async (t) => {
  const k = kiosk({ menuTimeoutS: 0.02 });
  const conn = await touch(k);
  conn.push(TWO_POOLS);
  await k.screen.nextView('menu');
  t.same(await backToSlideshow(k), { reason: 'no-choice', detail: undefined });
  t.same(conn.sent, [HELLO], 'no REQUEST');
  t.ok(conn.closedByStation, 'the connection was closed');
  t.equal(k.kiosk.endAllCalls, 2, 'cleaned up');
  t.equal(k.viewer.launches.length, 0);
  await shutDown(t, k);
});

t.test('a choice the server did not offer is no choice', async (t) => {
  const k = kiosk();
  const conn = await touch(k);
  conn.push(TWO_POOLS);
  await k.screen.nextView('menu');
  k.screen.choose('windows-xp');
  t.same(await backToSlideshow(k), { reason: 'no-choice', detail: undefined });
  t.same(conn.sent, [HELLO]);
  await shutDown(t, k);
});

t.test('the viewer exits during the session: END, the server says why, cleanup, slideshow', async (t) => {
  const k = kiosk();
  const { conn, viewer } = await connected(t, k);
  viewer.exit(0);
  // The console went away: the agent first gives the server a moment to say it ended the session.
  await k.clock.wake(ENDED_WAIT_MS);
  t.equal(await conn.nextSent(), 'END');
  conn.push('PING', 'ENDED session=S-1 reason=station');
  t.same(await backToSlideshow(k), { reason: 'station', detail: 'exit=0' });
  t.ok(conn.closedByStation);
  t.equal(k.kiosk.endAllCalls, 2);
  t.same(k.screen.views.filter((v) => v.kind === 'message').at(-1), { kind: 'message', title: SCREEN_TEXT.ended, detail: describeEnd('station') });
  await shutDown(t, k);
});

t.test('the viewer exits and the server does not answer END: the agent waits 3 s, no more', async (t) => {
  const k = kiosk();
  const { conn, viewer } = await connected(t, k);
  viewer.exit(1);
  await k.clock.wake(ENDED_WAIT_MS);
  t.equal(await conn.nextSent(), 'END');
  await k.clock.wake(ENDED_WAIT_MS);
  t.same(await backToSlideshow(k), { reason: 'viewer-exited', detail: 'exit=1' });
  t.equal(k.kiosk.endAllCalls, 2);
  await shutDown(t, k);
});

t.test('the viewer exits and the server closes the connection', async (t) => {
  const k = kiosk();
  const { conn, viewer } = await connected(t, k);
  viewer.exit(null);
  await k.clock.wake(ENDED_WAIT_MS);
  t.equal(await conn.nextSent(), 'END');
  conn.hangUp();
  t.same(await backToSlideshow(k), { reason: 'viewer-exited', detail: 'exit=null' });
  t.equal(k.link.attempts, 1, 'no resume: the visitor is done');
  await shutDown(t, k);
});

for (const answer of ['ERR 400 bad-request expected TABULA/<version> or nothing', 'ERR 505 unsupported-version 1']) {
  t.test(`v0 fallback: the server answers the hello with "${answer}"`, async (t) => {
    const k = kiosk({ spicePort: 5999 });
    const first = await touch(k);
    t.equal(await first.nextSent(), HELLO);
    first.push(answer);
    const conn = await k.link.nextConnection();
    t.ok(first.closedByStation, 'the first connection was closed');
    await k.logger.logged('server-speaks-v0');
    await settle();
    t.same(conn.sent, [], 'a v0 station says nothing');
    t.equal(k.viewer.launches.length, 0, 'and waits');

    conn.push('RULE ADDED, CONNECT NOW');
    const viewer = await k.viewer.nextLaunch();
    t.same(viewer.launch, { host: '169.254.24.1', port: 5999, title: 'Tabula' }, 'the configured Spice port, no password');
    conn.push('RULE ADDED, CONNECT NOW', 'RULE ADDED, CONNECT NOW');
    conn.hangUp();
    await settle();
    t.ok(viewer.running, 'the server closing its line (client connected) does not end the session');
    t.equal(k.kiosk.endAllCalls, 1);

    viewer.exit(0);
    t.same(await backToSlideshow(k), { reason: 'viewer-exited', detail: 'exit=0' });
    t.equal(k.kiosk.endAllCalls, 2, 'cleaned up');
    t.same(conn.sent, [], 'nothing said, not even END');
    t.equal(k.link.attempts, 2);
    await shutDown(t, k);
  });
}

t.test('a v0 server that answers the hello at once with its line', async (t) => {
  const k = kiosk();
  const conn = await touch(k);
  t.equal(await conn.nextSent(), HELLO);
  conn.push('RULE ADDED, CONNECT NOW');
  const viewer = await k.viewer.nextLaunch();
  t.same(viewer.launch, { host: '169.254.24.1', port: 5906, title: 'Tabula' });
  t.equal(k.link.attempts, 1, 'the same connection');
  viewer.exit(0);
  t.same(await backToSlideshow(k), { reason: 'viewer-exited', detail: 'exit=0' });
  t.equal(k.kiosk.endAllCalls, 2);
  t.same(conn.sent, [HELLO]);
  await shutDown(t, k);
});

t.test('protocol=v0: no hello at all', async (t) => {
  const k = kiosk({ protocol: 'v0' });
  const conn = await touch(k);
  conn.push('PING', 'something else');
  await settle();
  t.same(conn.sent, [], 'silent, and other lines are passed over');
  conn.push('RULE ADDED, CONNECT NOW');
  const viewer = await k.viewer.nextLaunch();
  t.notOk('password' in viewer.launch);
  viewer.exit(0);
  await backToSlideshow(k);
  await shutDown(t, k);
});

t.test('protocol=v0: an ERR is a refusal; the line closing is the end of the visit', async (t) => {
  const k = kiosk({ protocol: 'v0' });
  const conn = await touch(k);
  conn.push('ERR 426 ticket-required');
  t.same(await k.screen.nextView('unavailable'), { kind: 'unavailable', title: SCREEN_TEXT.refused, detail: SCREEN_TEXT.tryLater });
  await k.clock.wake(REFUSAL_SHOWN_MS);
  t.same(await backToSlideshow(k), { reason: 'refused', detail: '426 ticket-required' });
  const again = await touch(k);
  again.hangUp();
  t.same(await backToSlideshow(k, 2), { reason: 'server-closed', detail: undefined });
  await shutDown(t, k);
});

t.test('protocol=v1: an ERR 400 to the hello is a refusal, not a reason to speak v0', async (t) => {
  const k = kiosk({ protocol: 'v1' });
  const conn = await touch(k);
  conn.push('ERR 400 bad-request');
  t.equal((await k.screen.nextView('unavailable')).title, SCREEN_TEXT.refused);
  await k.clock.wake(REFUSAL_SHOWN_MS);
  t.same(await backToSlideshow(k), { reason: 'refused', detail: '400 bad-request' });
  t.equal(k.link.attempts, 1);
  await shutDown(t, k);
});

t.test('the server unreachable on a touch: "unavailable" with the next retry, backoff, then the slideshow again', async (t) => {
  const k = kiosk({ retryMinS: 1, retryMaxS: 3 });
  k.link.refusing = true;
  await tapScreen(k);
  const waits = [1, 2, 3, 3];
  for (const [i, s] of waits.entries()) {
    t.same(await k.screen.nextView('unavailable'), { kind: 'unavailable', title: SCREEN_TEXT.unavailable, detail: SCREEN_TEXT.retrying(s) }, `retry in ${s} s`);
    k.screen.touch(); // the visitor's impatience changes nothing
    if (i === waits.length - 1) k.link.refusing = false;
    await k.clock.wake(s * 1000);
  }
  t.same(await backToSlideshow(k), { reason: 'unavailable', detail: undefined });
  t.equal(k.link.attempts, 5);
  const conn = k.link.connections[0]!;
  t.ok(conn.closedByStation, 'the connection that worked is closed again');
  t.same(conn.sent, [], 'no hello: the visitor may have left; the slideshow asks again');
  t.equal(k.logger.find('server-unreachable').length, 1, 'the outage is logged once');
  t.same(k.logger.find('server-reachable')[0]?.fields, { attempts: 5 });
  t.equal(k.kiosk.endAllCalls, 2);
  await settle();
  t.equal(k.link.attempts, 5, 'a touch during the outage does not start another visit');
  await shutDown(t, k);
});

t.test('a touch before the first DHCP lease: "unavailable", the settings read again at each attempt, the server once a lease names it', async (t) => {
  const k = kiosk({ serverAddress: undefined, serverOrigin: 'no DHCP lease in /run/systemd/netif/leases; /etc/tabula/station.conf' });
  await tapScreen(k);
  t.same(await k.screen.nextView('unavailable'), { kind: 'unavailable', title: SCREEN_TEXT.unavailable, detail: SCREEN_TEXT.retrying(1) });
  t.same(k.logger.find('server-unreachable')[0]?.fields, { server: undefined, code: 'server-unknown', error: 'no server known: no DHCP lease names one and server_ip is not set' });
  t.equal(k.refreshes, 1, 'read before the visit');
  await k.clock.wake(1000);
  t.same(await k.screen.nextView('unavailable'), { kind: 'unavailable', title: SCREEN_TEXT.unavailable, detail: SCREEN_TEXT.retrying(2) }, 'still no server');
  t.equal(k.refreshes, 2, 'read again before the second attempt');
  k.nextConfig = BASE; // the lease came
  await k.clock.wake(2000);
  t.same(await backToSlideshow(k), { reason: 'unavailable', detail: undefined }, 'the server found: the slideshow asks again');
  t.equal(k.refreshes, 3);
  t.same(k.link.timeouts.length, 3, 'two attempts without a server, the third reached it');
  const probe = await k.link.nextConnection();
  t.ok(probe.closedByStation, 'the connection that found the server is closed again');
  const conn = await touch(k);
  t.equal(await conn.nextSent(), HELLO, 'the next touch is a real visit');
  conn.push('ERR 503 try-again');
  await k.clock.wake(REFUSAL_SHOWN_MS);
  await backToSlideshow(k, 2);
  await shutDown(t, k);
});

t.test('after an outage, the next touch starts a real visit', async (t) => {
  const k = kiosk({ retryMinS: 1, retryMaxS: 1 });
  k.link.refusing = true;
  await tapScreen(k);
  await k.screen.nextView('unavailable');
  k.link.refusing = false;
  await k.clock.wake(1000);
  const probe = await k.link.nextConnection();
  await backToSlideshow(k);
  t.same(probe.sent, [], 'the connection that found the server back says nothing');
  const conn = await touch(k);
  t.equal(await conn.nextSent(), HELLO);
  conn.push('ERR 503 try-again');
  await k.clock.wake(REFUSAL_SHOWN_MS);
  t.same(await backToSlideshow(k, 2), { reason: 'unavailable', detail: '503 try-again' });
  await shutDown(t, k);
});

t.test('ERR 503 try-again after REQUEST: "unavailable", then the slideshow', async (t) => {
  const k = kiosk();
  const conn = await requested(t, k);
  conn.push('ERR 503 try-again');
  t.same(await k.screen.nextView('unavailable'), { kind: 'unavailable', title: SCREEN_TEXT.unavailable, detail: SCREEN_TEXT.tryLater });
  t.ok(conn.closedByStation);
  await k.clock.sleepingFor(REFUSAL_SHOWN_MS);
  t.equal(k.kiosk.endAllCalls, 1, 'the refusal stays on the screen for a while');
  await k.clock.wake(REFUSAL_SHOWN_MS);
  t.same(await backToSlideshow(k), { reason: 'unavailable', detail: '503 try-again' });
  t.equal(k.kiosk.endAllCalls, 2);
  await shutDown(t, k);
});

t.test('ERR 404 no-such-pool: the refusal text', async (t) => {
  const k = kiosk({ pool: 'gone' });
  const conn = await requested(t, k, ONE_POOL, 'REQUEST pool=gone');
  conn.push('ERR 404 no-such-pool gone');
  t.same(await k.screen.nextView('unavailable'), { kind: 'unavailable', title: SCREEN_TEXT.refused, detail: SCREEN_TEXT.tryLater });
  await k.clock.wake(REFUSAL_SHOWN_MS);
  t.same(await backToSlideshow(k), { reason: 'refused', detail: '404 no-such-pool' });
  await shutDown(t, k);
});

t.test('READY without a ticket (a pool shared with v0 stations): the viewer starts without a password', async (t) => {
  const k = kiosk();
  const conn = await requested(t, k);
  conn.push('READY session=S vm=v host=169.254.24.1 port=5906 expires=10');
  const viewer = await k.viewer.nextLaunch();
  t.same(viewer.launch, { host: '169.254.24.1', port: 5906, title: 'Tabula' });
  t.notOk('password' in viewer.launch);
  k.stop.abort();
  await k.run;
});

t.test('other answers before READY', async (t) => {
  const cases: [string, string, string][] = [
    ['ERR 429 already-waiting', SCREEN_TEXT.refused, 'refused'],
    ['ERR 429 too-many-connections', SCREEN_TEXT.unavailable, 'unavailable'],
    ['ERR 409 wrong-state a session is under way', SCREEN_TEXT.refused, 'refused'],
    ['ENDED session=S reason=error', SCREEN_TEXT.refused, 'refused'],
  ];
  for (const [line, title, reason] of cases) {
    const k = kiosk();
    const conn = await requested(t, k);
    conn.push(line);
    t.equal((await k.screen.nextView('unavailable')).title, title, line);
    await k.clock.wake(REFUSAL_SHOWN_MS);
    t.equal((await backToSlideshow(k)).reason, reason, line);
    t.equal(k.viewer.launches.length, 0);
    k.stop.abort();
    await k.run;
  }
});

t.test('the server closes or says nothing', async (t) => {
  await t.test('before WELCOME: closed', async (t) => {
    const k = kiosk();
    const conn = await touch(k);
    conn.hangUp();
    t.equal((await k.screen.nextView('unavailable')).title, SCREEN_TEXT.unavailable);
    await k.clock.wake(REFUSAL_SHOWN_MS);
    t.same(await backToSlideshow(k), { reason: 'unavailable', detail: 'closed' });
    await shutDown(t, k);
  });
  await t.test('before WELCOME: silent for 10 s', async (t) => {
    const k = kiosk();
    const conn = await touch(k);
    await conn.nextSent();
    await k.clock.wake(WELCOME_TIMEOUT_MS);
    t.equal((await k.screen.nextView('unavailable')).title, SCREEN_TEXT.unavailable);
    t.ok(conn.closedByStation);
    await k.clock.wake(REFUSAL_SHOWN_MS);
    t.same(await backToSlideshow(k), { reason: 'unavailable', detail: 'timeout' });
    await shutDown(t, k);
  });
  await t.test('in the queue: silent for 45 s', async (t) => {
    const k = kiosk();
    const conn = await requested(t, k);
    conn.push('QUEUED position=3');
    await k.screen.nextView('waiting', (v) => v.position === 3);
    await k.clock.wake(SERVER_SILENCE_MS);
    await k.clock.wake(REFUSAL_SHOWN_MS);
    t.same(await backToSlideshow(k), { reason: 'unavailable', detail: 'timeout' });
    t.ok(conn.closedByStation);
    await shutDown(t, k);
  });
});

t.test('PING is answered with PONG while waiting and during the session', async (t) => {
  const k = kiosk();
  const conn = await requested(t, k);
  conn.push('PING');
  t.equal(await conn.nextSent(), 'PONG', 'in the queue');
  conn.push('QUEUED position=1', 'PING', 'PONG');
  t.equal(await conn.nextSent(), 'PONG');
  conn.push(READY);
  const viewer = await k.viewer.nextLaunch();
  conn.push('PING');
  t.equal(await conn.nextSent(), 'PONG', 'before CONNECTED');
  conn.push(CONNECTED, 'PING');
  t.equal(await conn.nextSent(), 'PONG', 'during the session');
  conn.push('PING', 'PING');
  t.equal(await conn.nextSent(), 'PONG');
  t.equal(await conn.nextSent(), 'PONG', 'each one');
  t.ok(viewer.running);
  conn.push('ENDED session=S-1 reason=disconnected');
  await backToSlideshow(k);
  t.same(conn.sent, [HELLO, 'REQUEST pool=desktop', 'PONG', 'PONG', 'PONG', 'PONG', 'PONG', 'PONG']);
  await shutDown(t, k);
});

t.test('the control connection closes during a connected session: RESUME on a new one, the session goes on', async (t) => {
  const k = kiosk();
  const { conn, viewer } = await connected(t, k);
  conn.hangUp();
  const again = await k.link.nextConnection();
  t.equal(await again.nextSent(), HELLO);
  t.equal(await again.nextSent(), 'RESUME session=S-1');
  again.push('WELCOME version=1 pools=desktop:0/4', 'PING', CONNECTED);
  const resumed = await k.logger.logged('session-resumed');
  t.same(resumed.fields, { session: 'S-1', attempts: 1 });
  t.ok(viewer.running, 'the viewer was never stopped');
  t.equal(k.viewer.launches.length, 1, 'nor started again');
  t.equal(k.kiosk.endAllCalls, 1, 'no cleanup');

  again.push('PING');
  t.equal(await again.nextSent(), 'PONG', 'the session goes on, on the new connection');
  k.activity.input();
  t.equal(await again.nextSent(), 'INPUT', 'INPUT goes on the new connection');
  again.push('WARN session=S-1 reason=time-limit seconds=60');
  t.same(await k.screen.nextCountdown(), { reason: 'time-limit', seconds: 60, message: SCREEN_TEXT.countdown('time-limit') });
  again.push('ENDED session=S-1 reason=time-limit');
  t.same(await backToSlideshow(k), { reason: 'time-limit', detail: undefined });
  t.equal(viewer.stops, 1);
  t.ok(again.closedByStation);
  t.same(conn.sentAfterClose, [], 'nothing sent on the dead connection');
  t.equal(k.kiosk.endAllCalls, 2);
  await shutDown(t, k);
});

t.test('resume refused (ERR 404 no-such-session): the session ends with a cleanup', async (t) => {
  const k = kiosk();
  const { conn, viewer } = await connected(t, k);
  conn.hangUp();
  const again = await k.link.nextConnection();
  again.push('WELCOME version=1 pools=desktop:0/4', 'ERR 404 no-such-session');
  t.same(await backToSlideshow(k), { reason: 'link-lost', detail: undefined });
  t.same(k.logger.find('session-not-resumed')[0]?.fields, { session: 'S-1', answer: '404 no-such-session' });
  t.equal(viewer.stops, 1, 'the viewer was stopped');
  t.ok(again.closedByStation);
  t.equal(k.kiosk.endAllCalls, 2);
  t.same(k.screen.views.filter((v) => v.kind === 'message').at(-1), { kind: 'message', title: SCREEN_TEXT.ended, detail: describeEnd('link-lost') });
  await shutDown(t, k);
});

t.test('the link lost before the client connected: no resume', async (t) => {
  const k = kiosk();
  const conn = await requested(t, k);
  conn.push(READY);
  const viewer = await k.viewer.nextLaunch();
  conn.hangUp();
  t.same(await backToSlideshow(k), { reason: 'link-lost', detail: undefined });
  t.equal(k.link.attempts, 1);
  t.equal(viewer.stops, 1);
  await shutDown(t, k);
});

t.test('resume: the server unreachable for the whole window', async (t) => {
  const k = kiosk({ retryMinS: 1 });
  const { conn, viewer } = await connected(t, k);
  k.link.refusing = true;
  conn.hangUp();
  // backoff from retry_min, capped at 5 s, for 30 s
  for (const s of [1, 2, 4, 5, 5, 5, 5, 5]) await k.clock.wake(s * 1000);
  t.same(await backToSlideshow(k), { reason: 'link-lost', detail: undefined });
  t.equal(k.link.attempts, 9, 'the first connection and 8 attempts to resume');
  t.equal(viewer.stops, 1);
  t.equal(k.kiosk.endAllCalls, 2);
  await shutDown(t, k);
});

t.test('resume: the viewer exits meanwhile, the agent gives up', async (t) => {
  const k = kiosk({ retryMinS: 1 });
  const { conn, viewer } = await connected(t, k);
  k.link.refusing = true;
  conn.hangUp();
  await k.clock.sleepingFor(1000);
  viewer.exit(0);
  await k.clock.wake(1000);
  t.same(await backToSlideshow(k), { reason: 'link-lost', detail: undefined });
  t.equal(k.link.attempts, 2, 'no attempt after the viewer left');
  await shutDown(t, k);
});

t.test('resume after the server went silent for 45 s', async (t) => {
  const k = kiosk();
  const { conn, viewer } = await connected(t, k);
  await k.clock.wake(SERVER_SILENCE_MS);
  const again = await k.link.nextConnection();
  t.notOk(conn.closedByServer, 'the server never closed the silent connection');
  t.equal(await again.nextSent(), HELLO);
  t.equal(await again.nextSent(), 'RESUME session=S-1');
  again.push('WELCOME version=1 pools=desktop:0/4', CONNECTED);
  await k.logger.logged('session-resumed');
  t.ok(viewer.running);
  again.push('ENDED session=S-1 reason=idle');
  t.same(await backToSlideshow(k), { reason: 'idle', detail: undefined });
  await shutDown(t, k);
});

t.test(
  'resume after the server went silent: the silent connection is closed by the end of the visit',
  async (t) => {
    const k = kiosk();
    const { conn } = await connected(t, k);
    await k.clock.wake(SERVER_SILENCE_MS);
    const again = await k.link.nextConnection();
    again.push('WELCOME version=1 pools=desktop:0/4', CONNECTED);
    await k.logger.logged('session-resumed');
    again.push('ENDED session=S-1 reason=idle');
    await backToSlideshow(k);
    t.ok(again.closedByStation, 'the resumed connection is closed');
    t.ok(conn.closedByStation, 'and so is the one that went silent');
    await shutDown(t, k);
  },
);

t.test('a touch during the visit does not start the next one', async (t) => {
  const k = kiosk();
  const { conn } = await connected(t, k);
  k.screen.touch();
  k.screen.touch();
  conn.push('ENDED session=S-1 reason=disconnected');
  await backToSlideshow(k);
  await settle();
  t.equal(k.link.attempts, 1, 'still on the slideshow');
  t.equal(k.screen.current?.kind, 'slideshow');
  await shutDown(t, k);
});

t.test('one visit after another, with the config of each visit', async (t) => {
  const k = kiosk();
  const { conn } = await connected(t, k);
  conn.push('ENDED session=S-1 reason=disconnected');
  await backToSlideshow(k);
  k.nextConfig = { ...k.config, stationName: 'kiosk-4', pool: 'linux' };
  const second = await touch(k);
  t.equal(await second.nextSent(), 'TABULA/1 HELLO station=kiosk-4', 'the refreshed config');
  second.push(TWO_POOLS);
  t.equal(await second.nextSent(), 'REQUEST pool=linux');
  second.push('READY session=S-2 vm=tabula-linux-0 host=169.254.24.1 port=5907 ticket=two expires=10');
  const viewer = await k.viewer.nextLaunch();
  t.same(viewer.launch, { host: '169.254.24.1', port: 5907, password: 'two', title: 'Tabula' });
  second.push('CONNECTED session=S-2', 'ENDED session=S-2 reason=shutdown');
  t.same(await backToSlideshow(k, 2), { reason: 'shutdown', detail: undefined });
  t.equal(k.refreshes, 2);
  t.equal(k.kiosk.endAllCalls, 3, 'a cleanup at the start and after each visit');
  await shutDown(t, k);
});

t.test('blank_after: the slideshow goes black; a touch only brings it back', async (t) => {
  const k = kiosk({ blankAfterS: 0.02 });
  await k.screen.nextView('slideshow');
  await k.screen.nextView('blank');
  k.screen.touch();
  await k.screen.nextView('slideshow');
  await settle();
  t.equal(k.link.attempts, 0, 'no visit');
  await shutDown(t, k);
});

t.test('a cleanup that fails is logged, and the slideshow comes anyway', async (t) => {
  const k = kiosk({}, (f) => (f.kiosk.failures = 2));
  const { conn } = await connected(t, k);
  t.same(k.logger.find('kiosk-cleanup-failed')[0]?.fields, { reason: 'start', code: 'cleanup-failed', error: 'pid 4242 (remote-viewer) survived SIGKILL' });
  t.equal(k.logger.find('kiosk-cleanup-failed')[0]?.level, 'err');
  conn.push('ENDED session=S-1 reason=idle');
  await backToSlideshow(k);
  t.equal(k.logger.find('kiosk-cleanup-failed').length, 2);
  await shutDown(t, k);
});

t.test('pictures that cannot be read: empty lists, not a failure', async (t) => {
  const k = kiosk({}, (f) => (f.pictures.failing = true));
  t.same((await k.screen.nextView('slideshow')).images, []);
  k.screen.touch();
  t.same((await k.screen.nextView('waiting')).images, []);
  const conn = await k.link.nextConnection();
  conn.push('ERR 503 try-again');
  await k.clock.wake(REFUSAL_SHOWN_MS);
  await backToSlideshow(k);
  await shutDown(t, k);
});

t.test('the viewer cannot start: the server is told at once, the connection closed, cleanup, slideshow', async (t) => {
  const k = kiosk();
  k.viewer.failNext = new StationError('viewer-failed', 'cannot start remote-viewer: ENOENT');
  const conn = await requested(t, k);
  conn.push(READY);
  t.equal(await conn.nextSent(), 'END', 'END: the server need not hold the VM until its own timeout');
  t.same(await k.screen.nextView('unavailable'), { kind: 'unavailable', title: SCREEN_TEXT.refused, detail: SCREEN_TEXT.tryLater });
  await k.clock.wake(REFUSAL_SHOWN_MS);
  t.same(await backToSlideshow(k), { reason: 'viewer-failed', detail: 'cannot start remote-viewer: ENOENT' });
  t.same(k.logger.find('viewer-failed')[0]?.fields, { session: 'S-1', error: 'cannot start remote-viewer: ENOENT' });
  t.ok(conn.closedByStation, 'the control connection is closed');
  t.equal(k.kiosk.endAllCalls, 2);
  t.equal(k.activity.starts, 0);
  await shutDown(t, k);
});

t.test('aborting the signal', async (t) => {
  await t.test('on the slideshow: run() ends, the screen is stopped', async (t) => {
    const k = kiosk();
    await k.screen.nextView('slideshow');
    await shutDown(t, k);
    t.equal(k.kiosk.endAllCalls, 1);
    t.equal(k.link.attempts, 0);
  });

  await t.test('during a session (the next server line wakes the agent): viewer stopped, cleanup, screen stopped', async (t) => {
    const k = kiosk();
    const { conn, viewer } = await connected(t, k);
    k.stop.abort();
    conn.push('PING');
    await k.run;
    t.equal(viewer.stops, 1, 'the viewer was stopped');
    t.ok(conn.closedByStation);
    t.equal(k.kiosk.endAllCalls, 2, 'cleanup done');
    t.equal(k.screen.stops, 1, 'the screen stopped');
    t.same(k.trace.of('viewer:stop', 'kiosk:', 'screen:').slice(-3), ['viewer:stop', 'kiosk:endAll', 'screen:stop']);
    t.equal(k.logger.find('visit-ended')[0]?.fields.reason, 'stopping');
  });

  await t.test('during a v0 session', async (t) => {
    const k = kiosk({ protocol: 'v0' });
    const conn = await touch(k);
    conn.push('RULE ADDED, CONNECT NOW');
    const viewer = await k.viewer.nextLaunch();
    k.stop.abort();
    await k.run;
    t.equal(viewer.stops, 1);
    t.equal(k.kiosk.endAllCalls, 2);
    t.equal(k.screen.stops, 1);
    t.equal(k.logger.find('visit-ended')[0]?.fields.reason, 'stopping');
  });

  await t.test('on the menu', async (t) => {
    const k = kiosk();
    const conn = await touch(k);
    conn.push(TWO_POOLS);
    await k.screen.nextView('menu');
    k.stop.abort();
    await k.run;
    t.same(conn.sent, [HELLO]);
    t.ok(conn.closedByStation);
    t.equal(k.kiosk.endAllCalls, 2);
    t.equal(k.screen.stops, 1);
  });

  await t.test('while the server is unreachable', async (t) => {
    const k = kiosk();
    k.link.refusing = true;
    await tapScreen(k);
    await k.clock.sleepingFor(1000);
    k.stop.abort();
    await k.run;
    t.equal(k.logger.find('visit-ended')[0]?.fields.reason, 'stopping');
    t.equal(k.screen.stops, 1);
  });

  await t.test('while a refusal is shown', async (t) => {
    const k = kiosk();
    const conn = await requested(t, k);
    conn.push('ERR 503 try-again');
    await k.clock.sleepingFor(REFUSAL_SHOWN_MS);
    k.stop.abort();
    await k.run;
    t.equal(k.kiosk.endAllCalls, 2);
    t.equal(k.screen.stops, 1);
  });
});

/** Once the agent waits for the server on `conn`: aborts, lets everything pending run, and checks that run() ended; then unblocks it with `nudge`. */
async function endsOnAbort(t: Test, k: Kiosk, conn: FakeServerConnection, nudge: () => void): Promise<void> {
  await k.trace.until(() => conn.reading);
  k.stop.abort();
  await settle();
  t.ok(k.done, 'run() ended without another word from the server');
  nudge();
  await k.run;
}

t.test(
  'aborting while the server is silent',
  async (t) => {
    await t.test('during a session', async (t) => {
      const k = kiosk();
      const { conn, viewer } = await connected(t, k);
      await endsOnAbort(t, k, conn, () => conn.push('PING'));
      t.equal(viewer.stops, 1);
    });
    await t.test('in the queue', async (t) => {
      const k = kiosk();
      const conn = await requested(t, k);
      conn.push('QUEUED position=4');
      await k.screen.nextView('waiting', (v) => v.position === 4);
      await endsOnAbort(t, k, conn, () => conn.push('PING'));
    });
    await t.test('waiting for a v0 server (which says nothing while no VM is clean)', async (t) => {
      const k = kiosk({ protocol: 'v0' });
      const conn = await touch(k);
      await endsOnAbort(t, k, conn, () => conn.hangUp());
    });
    await t.test('waiting for WELCOME', async (t) => {
      const k = kiosk();
      const conn = await touch(k);
      await endsOnAbort(t, k, conn, () => conn.hangUp());
    });
  },
);

t.test('aborting while the viewer starts (v1): the session is ended at once', async (t) => {
  const k = kiosk();
  const release = k.viewer.hold();
  const conn = await requested(t, k);
  conn.push(READY);
  await k.trace.until(() => k.viewer.launches.length === 1);
  k.stop.abort();
  release();
  await k.run;
  t.equal(k.viewer.started[0]?.stops, 1, 'the viewer was stopped');
  t.equal(k.kiosk.endAllCalls, 2);
});

t.test(
  'aborting while the viewer starts (v0): the session is ended at once',
  async (t) => {
    const k = kiosk({ protocol: 'v0' });
    const release = k.viewer.hold();
    const conn = await touch(k);
    conn.push('RULE ADDED, CONNECT NOW');
    await k.trace.until(() => k.viewer.launches.length === 1);
    k.stop.abort();
    release();
    await settle();
    t.ok(k.done, 'run() ended');
    const viewer = await k.viewer.nextLaunch();
    viewer.exit(0);
    await k.run;
    t.equal(viewer.stops, 1, 'the viewer was stopped');
  },
);

t.test(
  'v0 sessions leave no abort listener behind',
  async (t) => {
    const k = kiosk({ protocol: 'v0' });
    await k.screen.nextView('slideshow');
    const before = getEventListeners(k.stop.signal, 'abort').length;
    for (let i = 1; i <= 3; i++) {
      const conn = await touch(k);
      conn.push('RULE ADDED, CONNECT NOW');
      (await k.viewer.nextLaunch()).exit(0);
      await backToSlideshow(k, i);
    }
    t.equal(getEventListeners(k.stop.signal, 'abort').length, before, 'as many listeners as before the sessions');
    await shutDown(t, k);
  },
);

t.test(
  'a choice made after the server gave up waiting for REQUEST (45 s) still gets a desktop',
  async (t) => {
    const k = kiosk();
    const conn = await touch(k);
    conn.push(TWO_POOLS);
    await k.screen.nextView('menu');
    conn.hangUp(); // the server's nextLine(silenceLimitMs) timed out after WELCOME
    k.screen.choose('linux');
    await settle();
    t.equal(k.link.attempts, 2, 'the choice goes to the server on a new connection');
    t.not(k.screen.current?.kind, 'unavailable', 'no "unavailable" for a server that is up');
    if (k.screen.current?.kind === 'unavailable') await k.clock.wake(REFUSAL_SHOWN_MS);
    k.stop.abort();
    for (const c of k.link.connections) c.hangUp();
    await k.run;
  },
);
