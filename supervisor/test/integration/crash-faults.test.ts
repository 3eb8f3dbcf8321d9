// Crash safety, point by point: the supervisor is killed (SIGKILL, armed by
// TABULA_FAULT) at each side effect of each executor step and between the
// stages of a hand-off, while a station uses a VM; a fresh supervisor then
// picks up from libvirt and the ruleset alone. After each: a live session is
// still running and bound to its station, the pool is whole, nothing leaked,
// nothing handed out was ever clean again, and every session is in the log.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeTestRoot, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { domains, forwards, leaks, loggedSessions, ReuseWatch, sessionLogFile } from '../helpers/invariants.js';
import { makeStationLan, removeStationWorld, stationsSection, TEST_TABLE, type Station } from '../helpers/station-lan.js';
import { SupervisorProcess, waitForClean } from '../helpers/supervisor-process.js';
import { connectV1 } from '../helpers/v1-client.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-crash`;
const PREFIX = `tabula-${POOL}-`;
const root = await makeTestRoot('crash');
const lan = await makeStationLan('crash', 1);
const [A] = lan.stations as [Station];
const storage = join(root.dir, 'state/pools', POOL);
// A second pool with Spice tickets, for the hand-off stage only ticketed pools have.
const TICKET_POOL = `${TEST_PREFIX}-tcrash`;
const TICKET_PREFIX = `tabula-${TICKET_POOL}-`;
const config = await writeConfig(
  root,
  testConfig(root, [
    { name: POOL, size: 2, spicePortBase: 5940, consoleTickets: false },
    { name: TICKET_POOL, size: 1, spicePortBase: 5945 },
  ]).replace('[[pool]]', `${stationsSection(lan, 6)}\n\n[[pool]]`),
);
const watch = new ReuseWatch(PREFIX);
const ticketWatch = new ReuseWatch(TICKET_PREFIX);
let current: SupervisorProcess | undefined;

t.teardown(async () => {
  await watch.stop();
  await ticketWatch.stop();
  await A.killAll();
  await current?.stop();
  await removeDomains(PREFIX);
  await removeDomains(TICKET_PREFIX);
  await root.cleanup();
  await removeStationWorld(lan);
});

/** The seed's station: wait for the line, then hold a plain TCP connection to the console (a v0 client). */
function seedStation(): ReturnType<Station['spawn']> {
  const script = `exec 3< <(exec nc ${lan.address} 5905)
while IFS= read -r line <&3; do
  case "$line" in *"RULE ADDED, CONNECT NOW"*) exec nc ${lan.address} 5906 ;; esac
done`;
  return A.spawn(['bash', '-c', script]);
}

function start(fault?: string): SupervisorProcess {
  current = new SupervisorProcess(config, fault === undefined ? {} : { TABULA_FAULT: fault });
  return current;
}

/** Resolves with the exit once the process is gone, or undefined after `ms`. */
function exitWithin(s: SupervisorProcess, ms: number) {
  return Promise.race([s.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
}

async function settled(): Promise<void> {
  await waitFor(
    'the pool settled: 2 clean VMs, no forward',
    async () => {
      const d = await domains(PREFIX);
      const fw = await forwards(TEST_TABLE);
      return d.length === 2 && d.every((x) => x.state === 'clean') && fw.length === 0 ? true : undefined;
    },
    150_000,
    500,
  );
}

t.test('warm-up: a clean pool to crash into', async () => {
  const s = start();
  await waitForClean(POOL, 2);
  await waitForClean(TICKET_POOL, 1);
  await s.stop();
});

/**
 * A visitor uses a VM and leaves; the supervisor armed with `points[0]` dies
 * on the way; each next supervisor is armed with the next point; the last
 * runs unarmed and must put everything right.
 */
async function crashCycle(t: Test, points: readonly string[]): Promise<void> {
  const first = start(points[0]);
  await first.waitForLine(/event=signal-port-open/, 60_000);
  await waitForClean(POOL, 2, 60_000);
  const station = seedStation();
  // Until it dies: the visitor connects, then leaves (the session's end drives the later steps).
  const connected = await Promise.race([first.waitForLine(/event=session-connected /, 60_000).then(() => true), first.exited.then(() => false)]);
  if (connected) {
    await new Promise((r) => setTimeout(r, 1_000));
    await A.killAll();
  }
  let exit = await exitWithin(first, 120_000);
  t.equal(exit?.signal, 'SIGKILL', `killed at ${points[0]}`);
  t.ok(first.lines.some((l) => l.includes(`event=fault-injected point=${points[0]} `)), `the fault line names ${points[0]}`);

  for (const point of points.slice(1)) {
    const next = start(point);
    exit = await exitWithin(next, 120_000);
    t.equal(exit?.signal, 'SIGKILL', `then killed at ${point}`);
  }

  // Whatever was live when it died: a connected session whose client is still on must survive.
  const live = (await domains(PREFIX)).filter((d) => d.state === 'in-use' && d.connected);
  const clientOn = station.exitCode === null && station.signalCode === null;
  const last = start();
  await last.waitForLine(/event=supervisor-ready/, 60_000);
  if (clientOn && live.length > 0) {
    await new Promise((r) => setTimeout(r, 4_000));
    const after = await domains(PREFIX);
    for (const d of live) {
      const same = after.find((x) => x.uuid === d.uuid);
      t.equal(same?.state, 'in-use', `session ${d.session} on ${d.name} survives the restart`);
      t.equal(same?.session, d.session, 'bound to the same session');
      t.ok(same?.connected, 'and recorded as connected');
    }
    t.ok(station.exitCode === null && station.signalCode === null, 'the station client is still on');
    await A.killAll();
  } else {
    await A.killAll();
  }
  await settled();
  t.same(await leaks(PREFIX, storage), [], 'nothing leaked: each file belongs to a VM, each VM has its disk');
  t.same(watch.violations, [], 'no VM that was handed out or dirty was ever clean again');
  const logged = await loggedSessions(sessionLogFile(join(root.dir, 'state')));
  for (const s of watch.connectedSessions) t.equal(logged.get(s), 1, `session ${s} is in the session log once`);
  await last.stop();
}

const POINTS: ReadonlyArray<readonly string[]> = [
  ['handoff:claimed'],
  ['handoff:forwarded'],
  ['handoff:arrived'],
  ['handoff:connected'],
  ['handoff:arrived', 'before:mark-connected'],
  ['handoff:arrived', 'after:mark-connected'],
  ...['destroy-vm', 'undefine-vm', 'start-vm'].flatMap((k) => ['before', 'mid', 'after'].map((w) => [`${w}:${k}`])),
  ...['delete-file', 'define-vm', 'clone-disk', 'mark-clean'].flatMap((k) => ['before', 'after'].map((w) => [`${w}:${k}`])),
];

for (const points of POINTS) {
  t.test(`killed at ${points.join(', then ')}`, (t) => crashCycle(t, points));
}

t.test('killed at handoff:ticketed (a v1 station on a ticketed pool): the VM is never clean again, the station never told READY', async (t) => {
  const s = start('handoff:ticketed');
  await s.waitForLine(/event=signal-port-open/, 60_000);
  await waitForClean(TICKET_POOL, 1, 60_000);
  const before = (await domains(TICKET_PREFIX))[0];
  const c = await connectV1(A, { host: lan.address, first: 'TABULA/1 HELLO station=kiosk-a' });
  try {
    await c.next(/^WELCOME /, 5_000);
    c.send(`REQUEST pool=${TICKET_POOL}`);
    const exit = await exitWithin(s, 60_000);
    t.equal(exit?.signal, 'SIGKILL', 'killed with the ticket set, before the forward and READY');
    await c.closed;
    t.notOk(c.lines.some((l) => l.startsWith('READY')), 'the station was never told READY');
  } finally {
    await c.kill();
  }
  const handed = (await domains(TICKET_PREFIX)).find((d) => d.uuid === before?.uuid);
  t.equal(handed?.state, 'in-use', 'the record says it was handed out');
  const last = start();
  // Nobody will connect: after connect_wait and the planner's slack it is recycled, not returned.
  await waitFor('a fresh clone in its place', async () => {
    const d = (await domains(TICKET_PREFIX))[0];
    return d !== undefined && d.uuid !== before?.uuid && d.state === 'clean' ? d : undefined;
  }, 150_000, 500);
  t.ok(last.lines.some((l) => /event=vm-destroyed .*reason=handoff-abandoned/.test(l)), 'the hand-off was given up');
  t.same(ticketWatch.violations, [], 'the handed-out VM was never clean again');
  t.same(await forwards(TEST_TABLE), [], 'no forward left');
  t.same(await leaks(TICKET_PREFIX, join(root.dir, 'state/pools', TICKET_POOL)), [], 'nothing leaked');
  await last.stop();
});
