import t from 'tap';
import { Dispatcher, type Handoff, type SessionStarted } from '../../src/app/dispatcher.js';
import { Reconciler, type SessionEnded } from '../../src/app/reconciler.js';
import { TabulaError } from '../../src/domain/errors.js';
import { parseConfig } from '../../src/config/config.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeDisks } from '../fakes/fake-disks.js';
import { FakeLibvirt } from '../fakes/fake-libvirt.js';
import { FakeConntrack, FakeFirewall } from '../fakes/fake-network.js';
import { FakeNotifier } from '../fakes/fake-notifier.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const GOLDEN = '/srv/golden/desk.qcow2';
const CONSOLE = '169.254.25.1';
const A = '169.254.24.10';
const B = '169.254.24.11';
const C = '169.254.24.12';

async function setup(tickets = true) {
  const config = parseConfig(
    `[supervisor]
hypervisor = "qemu"
[stations]
interface = "lan0"
connect_wait = 10
[[pool]]
name = "desk"
golden_image = "${GOLDEN}"
size = 2
console_tickets = ${tickets}
`,
    'unit.toml',
  );
  const libvirt = new FakeLibvirt();
  const disks = new FakeDisks();
  disks.putImage(GOLDEN);
  const clock = new FakeClock();
  const firewall = new FakeFirewall();
  const conntrack = new FakeConntrack();
  const logger = new MemoryLogger();
  let n = 0;
  const newSecret = () => `secret-${++n}-xxxxxxxxxxxx`;
  const reconciler = new Reconciler(config, { libvirt, disks, clock, notifier: new FakeNotifier(), logger, newSecret, firewall, conntrack });
  const started: SessionStarted[] = [];
  const dispatcher = new Dispatcher(config, { libvirt, conntrack, clock, logger, newSecret, onSessionStarted: (e) => started.push(e) }, reconciler);
  // Fill the pool: clone, boot, guests up.
  const fill = async () => {
    await reconciler.settle();
    for (const name of libvirt.names()) if (libvirt.domain(name)?.record?.state === 'booting') libvirt.guestUp(name);
    await reconciler.settle();
  };
  await fill();
  return { config, libvirt, clock, firewall, conntrack, logger, reconciler, dispatcher, started, fill };
}

type H = Awaited<ReturnType<typeof setup>>;

/** Lets the dispatcher's poll loop run, advancing the fake clock until `p` settles. */
async function drive<T>(h: H, p: Promise<T>, stepMs = 250, maxSteps = 200): Promise<T> {
  let done = false;
  void p.finally(() => (done = true));
  for (let i = 0; i < maxSteps && !done; i++) {
    await new Promise((r) => setImmediate(r));
    h.clock.advance(stepMs);
  }
  return p;
}

function ask(h: H, station: string, extra: Partial<Parameters<Dispatcher['request']>[0]> = {}): Promise<Handoff> {
  return h.dispatcher.request({ station, protocol: 'v1', signal: new AbortController().signal, ...extra });
}

t.test('two stations asking at once get two different VMs, each with its own expiring ticket and forward', async (t) => {
  const h = await setup();
  const [a, b] = await Promise.all([ask(h, A), ask(h, B)]);
  t.not(a.vm, b.vm, 'different VMs');
  for (const [hand, station] of [[a, A], [b, B]] as const) {
    const r = h.libvirt.domain(hand.vm)?.record;
    t.equal(r?.state, 'in-use');
    t.equal(r?.session?.station, station, 'bound to its station');
    const [ticket] = h.libvirt.tickets.get(hand.vm) ?? [];
    t.equal(ticket?.password, hand.ticket, 'the console takes the ticket handed to the station');
    t.equal(ticket?.validUntil, h.clock.now() + 10_000, 'valid for connect_wait');
    t.equal(ticket?.listen, CONSOLE);
  }
  t.same(
    [...h.firewall.forwards()].map((f) => f.station).sort(),
    [A, B],
    'one forward per station',
  );
});

t.test('a station whose client authenticates is connected; after the grace its ticket is replaced by one nobody knows', async (t) => {
  const h = await setup();
  const a = await ask(h, A);
  h.libvirt.graphics({ domain: a.vm, phase: 'connect', remoteAddress: A });
  h.libvirt.graphics({ domain: a.vm, phase: 'initialize', remoteAddress: A });
  t.equal(await drive(h, a.connected), true);
  const r = h.libvirt.domain(a.vm)?.record;
  t.ok(r?.session?.connectedAt, 'connection time recorded');
  t.equal((h.libvirt.tickets.get(a.vm) ?? []).length, 1, 'the ticket still works while the client opens its other channels');
  h.clock.advance(3_000);
  await drive(h, new Promise((r) => setTimeout(r, 20)), 50, 20);
  const tickets = h.libvirt.tickets.get(a.vm) ?? [];
  t.equal(tickets.length, 2, 'after forward_grace a second ticket was set');
  t.not(tickets[1]?.password, a.ticket, 'the handed-out ticket is dead');
  t.equal(tickets[1]?.validUntil, undefined);
});

t.test('a hand-off nobody took up goes back to clean with a fresh ticket; one touched by anyone goes dirty', async (t) => {
  const h = await setup();
  const a = await ask(h, A);
  t.equal(await drive(h, a.connected), false, 'not connected within connect_wait');
  t.equal(h.libvirt.domain(a.vm)?.record?.state, 'clean', 'untouched: clean again');
  t.equal(h.libvirt.domain(a.vm)?.record?.session, undefined, 'and carries no session');
  t.not((h.libvirt.tickets.get(a.vm) ?? []).at(-1)?.password, a.ticket, 'the station\'s ticket no longer opens it');
  await h.reconciler.settle();
  t.same(h.firewall.forwards(), [], 'the forward is gone');

  const b = await ask(h, B);
  // A wrong ticket: the channel connects, never authenticates.
  h.libvirt.graphics({ domain: b.vm, phase: 'connect', remoteAddress: B });
  h.libvirt.graphics({ domain: b.vm, phase: 'disconnect', remoteAddress: B });
  t.equal(await drive(h, b.connected), false, 'an unauthenticated client is not a connection');
  t.equal(h.libvirt.domain(b.vm)?.record?.state, 'dirty', 'but a touched console is never clean again');
});

t.test('without tickets a client from the station counts by its connection alone', async (t) => {
  const h = await setup(false);
  const a = await ask(h, A, { protocol: 'v0' });
  t.equal(a.ticket, undefined, 'no ticket');
  t.equal(h.libvirt.tickets.get(a.vm), undefined, 'the console keeps no password');
  h.conntrack.connect(CONSOLE, a.consolePort, A);
  t.equal(await drive(h, a.connected), true);
});

t.test('v0 cannot use a ticketed pool; a station may wait for one desktop at a time', async (t) => {
  const h = await setup();
  await t.rejects(ask(h, A, { protocol: 'v0' }), { code: 'ticket-required' });
  const a = await ask(h, A);
  await t.rejects(ask(h, A), { code: 'conflict' }, 'a second request while the first is unsettled');
  await t.rejects(ask(h, A, { pool: 'nope' }), { code: 'not-found' });
  h.libvirt.graphics({ domain: a.vm, phase: 'initialize', remoteAddress: A });
  await drive(h, a.connected);
});

t.test('two requests from one station at the same moment: one is served, the other refused', async (t) => {
  const h = await setup();
  const results = await Promise.allSettled([ask(h, A), ask(h, A), ask(h, A)]);
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one hand-off');
  t.same(
    results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as { code: string }).code),
    ['conflict', 'conflict'],
  );
  t.equal(h.libvirt.names().filter((n) => h.libvirt.domain(n)?.record?.state === 'in-use').length, 1, 'one VM in use');
  t.equal(h.firewall.forwards().length, 1, 'one forward');
});

t.test('when every VM is taken the next station queues, told its place, and is served when one is clean', async (t) => {
  const h = await setup();
  const a = await ask(h, A);
  const b = await ask(h, B);
  for (const [x, s] of [[a, A], [b, B]] as const) h.libvirt.graphics({ domain: x.vm, phase: 'initialize', remoteAddress: s });
  await drive(h, Promise.all([a.connected, b.connected]));
  const positions: number[] = [];
  const c = ask(h, C, { onQueued: (p) => positions.push(p) });
  await drive(h, new Promise((r) => setTimeout(r, 20)), 250, 5);
  t.same(positions, [1], 'told it is next');
  // A's visitor leaves: the reconciler recycles the VM and the fresh clone goes to C.
  h.conntrack.disconnect(CONSOLE, a.consolePort);
  await h.reconciler.settle();
  await h.reconciler.settle();
  for (const name of h.libvirt.names()) {
    const d = h.libvirt.domain(name);
    if (d?.active && d.record?.state === 'booting') h.libvirt.guestUp(name);
  }
  await h.reconciler.settle();
  const handed = await drive(h, c);
  t.equal(handed.vm, a.vm, "C gets the recycled slot's new VM");
  t.not(h.libvirt.domain(handed.vm)?.uuid, undefined);
});

t.test('a station ending its session makes the VM dirty', async (t) => {
  const h = await setup();
  const a = await ask(h, A);
  h.libvirt.graphics({ domain: a.vm, phase: 'initialize', remoteAddress: A });
  await drive(h, a.connected);
  await h.dispatcher.endSession(a.session);
  t.equal(h.libvirt.domain(a.vm)?.record?.state, 'dirty');
  await h.dispatcher.endSession('no-such-session');
  t.pass('ending an unknown session is harmless');
});

const refusal = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => (e instanceof TabulaError ? e.code : String(e)));

t.test('a drained pool hands out nothing, says so at once, and hands out again once undrained', async (t) => {
  const h = await setup(false);
  h.reconciler.setDrained(new Set(['desk']));
  t.equal(h.reconciler.status().pools[0]?.drained, true, 'the status says drained before any round');
  t.match(h.reconciler.status().line, /desk: 2\/2 clean, DRAINED/);
  t.equal(await refusal(ask(h, A, { protocol: 'v0' })), 'pool-drained', 'a station asking is refused with pool-drained');
  t.same(h.started, [], 'no session started');
  t.equal(h.reconciler.status().pools[0]?.counts.clean, 2, 'its clean VMs stay ready');

  h.reconciler.setDrained(new Set());
  const handoff = await ask(h, A, { protocol: 'v0' });
  t.equal(h.libvirt.domain(handoff.vm)?.record?.state, 'in-use', 'undrained: a VM is handed out');
  t.same(h.started, [{ session: handoff.session, station: A, pool: 'desk', vm: handoff.vm }], 'and the session start is told');
});

t.test('a station waiting in the queue is told when the pool is drained', async (t) => {
  const h = await setup(false);
  t.equal((await Promise.all([ask(h, A, { protocol: 'v0' }), ask(h, B, { protocol: 'v0' })])).length, 2, 'both VMs handed out');
  const positions: number[] = [];
  const waiting = refusal(ask(h, C, { protocol: 'v0', onQueued: (n) => positions.push(n) }));
  await drive(h, new Promise((r) => setTimeout(r, 20)), 100, 5);
  t.same(positions, [1], 'queued first in line');
  h.reconciler.setDrained(new Set(['desk']));
  t.equal(await drive(h, waiting), 'pool-drained', 'refused, not left waiting');
});

t.test('a drained pool is not refilled after a session ends; undrained, it is', async (t) => {
  const h = await setup(false);
  const handoff = await ask(h, A, { protocol: 'v0' });
  h.conntrack.connect(CONSOLE, handoff.consolePort, A);
  t.equal(await drive(h, handoff.connected), true, 'the station is on its VM');
  await h.reconciler.settle();
  h.reconciler.setDrained(new Set(['desk']));
  const defined = h.logger.find('vm-defined').length;
  const ended: SessionEnded[] = [];
  h.reconciler.onSessionEnded((e) => ended.push(e));
  await h.reconciler.endSession(handoff.session);
  t.same(ended, [{ session: handoff.session, vm: handoff.vm, cause: 'admin' }], 'ended by the admin, as the station is told');
  await h.fill();
  t.equal(h.libvirt.domain(handoff.vm), undefined, 'the used VM is gone');
  t.same(h.reconciler.status().pools[0]?.counts, { cloning: 0, booting: 0, clean: 1, 'in-use': 0, dirty: 0 }, 'and its slot stays empty');
  t.equal(h.logger.find('vm-defined').length, defined, 'no clone was defined while drained');

  h.reconciler.setDrained(new Set());
  await h.fill();
  t.equal(h.reconciler.status().pools[0]?.counts.clean, 2, 'undrained: the slot is refilled');
  t.equal(h.logger.find('vm-defined').length, defined + 1, 'with one new clone');
});

t.test('endSession: an unknown or ended session is NotFound, naming it', async (t) => {
  const h = await setup();
  const err = await h.reconciler.endSession('nope').then(
    () => undefined,
    (e: unknown) => e as TabulaError,
  );
  t.equal(err?.code, 'not-found');
  t.match(err?.message, /no session "nope" is under way/);
});
