// Station protocol v1 (docs/station-protocol.md, the contract): a kiosk agent
// in a station's netns speaks the line protocol to the real supervisor, its
// real Spice client gets in with the one-time ticket and nobody can after it,
// and the end of every session is told to the station on its control channel.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { BUILD, makeTestRoot, run, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { guestBoots } from '../helpers/guest.js';
import { ocrNamePattern, ocrShows, startViewer, type Screenshot, type Viewer, type ViewerOptions } from '../helpers/spice-client.js';
import { makeStationLan, probe, type Station, removeStationWorld, stationsSection, TEST_TABLE } from '../helpers/station-lan.js';
import { status, SupervisorProcess, waitForClean, type StatusJson } from '../helpers/supervisor-process.js';
import { connectV1, fields, type V1Client } from '../helpers/v1-client.js';
import { removeDomains, virsh } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-v1`;
const PREFIX = `tabula-${POOL}-`;
const CONSOLE_ADDRESS = '169.254.25.1';
/** connect_wait: what READY must announce as `expires`. */
const EXPIRES = 8;
const root = await makeTestRoot('v1');
// Three stations: the queue test needs two sessions and a third station to wait.
const lan = await makeStationLan('v1', 3);
const [A, B, C] = lan.stations as [Station, Station, Station];
const storage = join(root.dir, 'state/pools', POOL);
const ARTIFACTS = join(BUILD, 'test-reports', 'station-v1');
// No consoleTickets: the pool keeps the default (tickets on), as v1 pools do.
const config = await writeConfig(root, testConfig(root, [{ name: POOL, size: 2, spicePortBase: 5920 }]).replace('[[pool]]', `${stationsSection(lan, EXPIRES)}\n\n[[pool]]`));
const supervisor = new SupervisorProcess(config);
const clients: V1Client[] = [];
const viewers: Viewer[] = [];

t.teardown(async () => {
  await Promise.all(clients.map((c) => c.kill()));
  await Promise.all(viewers.map((v) => v.close()));
  await supervisor.stop();
  await removeDomains(PREFIX);
  await root.cleanup();
  await removeStationWorld(lan);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A control connection from `station`, its first line sent at once (inside the 100 ms v0 window). */
async function open(station: Station, first: string): Promise<V1Client> {
  const c = await connectV1(station, { host: lan.address, first });
  clients.push(c);
  return c;
}

/** A station that said hello and was welcomed. */
async function hello(station: Station, name: string): Promise<{ c: V1Client; welcome: Record<string, string> }> {
  const c = await open(station, `TABULA/1 HELLO station=${name}`);
  return { c, welcome: fields(await c.next(/^WELCOME /, 5_000)) };
}

async function request(c: V1Client, line = 'REQUEST', timeoutMs = 15_000): Promise<Record<string, string>> {
  c.send(line);
  return fields(await c.next(/^READY /, timeoutMs));
}

async function viewer(o: ViewerOptions): Promise<Viewer> {
  const v = await startViewer({ artifactsDir: ARTIFACTS, ...o });
  viewers.push(v);
  return v;
}

/** Whether the server closed the connection within `ms`. */
function closedWithin(c: V1Client, ms: number): Promise<boolean> {
  return Promise.race([c.closed.then(() => true), sleep(ms).then(() => false)]);
}

function vmOf(s: StatusJson, name: string) {
  return s.pools.find((p) => p.name === POOL)?.vms.find((v) => v.name === name);
}

function siblingOf(vm: string): string {
  return vm.endsWith('-0') ? vm.replace(/-0$/, '-1') : vm.replace(/-1$/, '-0');
}

async function forwardsChain(): Promise<string> {
  return (await run('nft', ['list', 'chain', 'inet', TEST_TABLE, 'forwards'])).stdout;
}

/** The console password libvirt holds for a running VM (only when it is set through libvirt). */
async function livePassword(vm: string): Promise<string | undefined> {
  const xml = await virsh('dumpxml', '--security-info', vm);
  return /<graphics [^>]*passwd='([^']*)'/.exec(xml)?.[1];
}

/** Carried from the first test to the two after it: one session, watched from start to end. */
let first: { c: V1Client; session: string; vm: string; ticket: string; viewer: Viewer } | undefined;

t.test('v1: HELLO, WELCOME, REQUEST, READY with a ticket; the station\'s viewer shows its VM; CONNECTED', async (t) => {
  await waitForClean(POOL, 2);
  await supervisor.waitForLine(/event=signal-port-open/, 30_000);
  const from = supervisor.mark();
  const { c, welcome } = await hello(A, 'kiosk-a');
  t.equal(welcome['version'], '1', 'WELCOME version=1');
  t.ok(welcome['pools']?.split(',').includes(`${POOL}:2/2`), `WELCOME lists ${POOL}:2/2 (pools=${welcome['pools']})`);
  t.equal(welcome['default'], POOL, `default=${POOL}`);

  // No pool= : the default pool.
  const r = await request(c);
  const session = r['session'] ?? '';
  const vm = r['vm'] ?? '';
  const ticket = r['ticket'] ?? '';
  t.ok(session.length > 0, `READY names a session (${session})`);
  t.ok(vm.startsWith(PREFIX), `READY names a VM of the pool (${vm})`);
  t.equal(r['host'], lan.address, 'host= the server on the station LAN');
  t.equal(r['port'], '5906', 'port= the Spice port');
  t.ok(ticket.length >= 8, 'ticket= a one-time password');
  t.equal(r['expires'], String(EXPIRES), 'expires= connect_wait');
  t.notOk(c.lines.some((l) => l.startsWith('QUEUED')), 'no QUEUED while a VM is clean');
  const handed = await supervisor.waitForLine(new RegExp(`event=vm-handed-out vm=${esc(vm)} .*station=169\\.254\\.24\\.10 `), 5_000, from);
  t.match(handed, `session=${session}`, 'the log names the session the station was told');

  const v = await viewer({ netns: A.netns, host: r['host'] ?? lan.address, port: Number(r['port']), password: ticket, name: 'station-a-v1' });
  const shot = await v.waitForText(ocrNamePattern(vm), 90_000);
  t.ok(ocrShows(shot.text, vm), `the station's screen shows ${vm} (${shot.png})`);
  t.notOk(ocrShows(shot.text, siblingOf(vm)), 'and not the other VM');
  const connected = fields(await c.next(/^CONNECTED /, 15_000));
  t.equal(connected['session'], session, 'CONNECTED session=S');
  await supervisor.waitForLine(new RegExp(`event=session-connected vm=${esc(vm)} `), 5_000, from);
  t.equal(vmOf(await status(), vm)?.state, 'in-use', 'the VM is in use');

  c.send('PING');
  await c.next(/^PONG\b/, 5_000);
  t.pass('PING is answered with PONG on the control channel');
  first = { c, session, vm, ticket, viewer: v };
});

t.test('v1: once connected the ticket is dead, and the station keeps its console', async (t) => {
  if (!first) return t.fail('needs the session of the first test');
  const { c, vm, ticket } = first;
  await waitFor('forward closed', async () => ((await forwardsChain()).includes('dnat') ? undefined : true), 15_000);
  t.pass("A's forward is removed after the grace");
  t.equal(await probe(A, lan.address, 5906), 'refused', 'a second connection from A finds no forward');

  // So the old ticket is tried on the console itself, from the server's own
  // namespace, where the guard (LAN interface only) does not apply.
  const port = vmOf(await status(), vm)?.spicePort;
  if (port === undefined) return t.fail(`no Spice port for ${vm} in tabulactl status`);
  // The ticket also stops working when it expires (expires= seconds after
  // READY, likely over by now): only the console's own password tells that it
  // was replaced at once, as the contract says.
  const replaced = await waitFor('a new console password', async () => ((await livePassword(vm)) !== ticket ? true : undefined), 5_000, 250).catch(() => false);
  t.ok(replaced, "the console's password is no longer the ticket (libvirt's live XML)");

  const qemuLog = `/var/log/libvirt/qemu/${vm}.log`;
  const logBefore = (await readFile(qemuLog, 'utf8').catch(() => '')).length;
  const stale = await viewer({ host: CONSOLE_ADDRESS, port, password: ticket, name: 'old-ticket' });
  // Either outcome ends the wait: the password dialog, or (the failure) the guest.
  const either = new RegExp(`Authentication (is )?required|${ocrNamePattern(vm).source}`, 'i');
  const shot: Screenshot = await stale.waitForText(either, 60_000).catch((e: { shot?: Screenshot }) => e.shot ?? { png: '', text: '' });
  t.notOk(ocrShows(shot.text, vm), `the old ticket shows no guest screen (${shot.png})`);
  t.match(shot.text, /Authentication (is )?required/i, 'remote-viewer asks for a password: the server refused the ticket');
  await stale.close();
  t.match((await readFile(qemuLog, 'utf8').catch(() => '')).slice(logBefore), /Invalid password|expired/i, 'QEMU refused the old ticket');

  const still = await first.viewer.waitForText(ocrNamePattern(vm), 30_000);
  t.ok(ocrShows(still.text, vm), `A's viewer still shows ${vm} (${still.png})`);
  t.equal(vmOf(await status(), vm)?.state, 'in-use', 'the VM is still in use');
  t.notOk(c.lines.some((l) => l.startsWith('ENDED')) || c.isClosed(), "A's session goes on");
});

t.test('v1: the viewer leaving ends the session: ENDED reason=disconnected, the VM is recycled', async (t) => {
  if (!first) return t.fail('needs the session of the first test');
  const { c, session, vm } = first;
  const [boot] = await guestBoots(join(storage, `${vm}.console.log`));
  const from = supervisor.mark();
  await first.viewer.close();
  const ended = fields(await c.next(/^ENDED /, 30_000));
  t.equal(ended['session'], session, 'ENDED session=S');
  t.equal(ended['reason'], 'disconnected', 'reason=disconnected');
  t.ok(await closedWithin(c, 5_000), 'then the server closes the connection');
  await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${esc(vm)} reason=session-ended`), 30_000, from);
  t.pass('the VM was destroyed');
  await waitForClean(POOL, 2);
  const boots = await guestBoots(join(storage, `${vm}.console.log`));
  t.not(boots[0]?.session, boot?.session, 'its slot holds a new VM');
  t.equal(boots[0]?.previousMarker, 'none', "whose disk has no marker from A's session");
  first = undefined;
});

t.test('v1: END from the station ends its session: ENDED reason=station, the VM is destroyed', async (t) => {
  await waitForClean(POOL, 2);
  const from = supervisor.mark();
  const { c } = await hello(A, 'kiosk-a');
  const r = await request(c, `REQUEST pool=${POOL}`);
  const vm = r['vm'] ?? '';
  const session = r['session'] ?? '';
  const v = await viewer({ netns: A.netns, host: r['host'] ?? lan.address, port: Number(r['port']), password: r['ticket'] ?? '', name: 'station-a-end' });
  try {
    await c.next(/^CONNECTED /, 20_000);
    c.send('END');
    const ended = fields(await c.next(/^ENDED /, 10_000));
    t.equal(ended['session'], session, 'ENDED session=S');
    t.equal(ended['reason'], 'station', 'reason=station');
    t.ok(await closedWithin(c, 5_000), 'then the server closes the connection');
    const destroyed = await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${esc(vm)} .*session=${esc(session)}`), 30_000, from);
    t.pass(`the VM was destroyed (${/reason=(\S+)/.exec(destroyed)?.[1]})`);
  } finally {
    await v.close();
  }
});

t.test('v1: a ticket not used within expires: ENDED reason=not-connected, then it opens nothing; the VM stays clean', async (t) => {
  const before = await waitForClean(POOL, 2);
  const from = supervisor.mark();
  const { c } = await hello(A, 'kiosk-a');
  const r = await request(c);
  const vm = r['vm'] ?? '';
  const readyAt = Date.now();
  const ended = fields(await c.next(/^ENDED /, (EXPIRES + 10) * 1000));
  const waited = (Date.now() - readyAt) / 1000;
  t.equal(ended['session'], r['session'], 'ENDED session=S');
  t.equal(ended['reason'], 'not-connected', 'reason=not-connected');
  t.ok(waited >= EXPIRES - 1, `not before the ticket expired (${waited.toFixed(1)} s after READY)`);
  t.ok(await closedWithin(c, 5_000), 'then the server closes the connection');
  await supervisor.waitForLine(new RegExp(`event=handoff-not-taken vm=${esc(vm)} .*back_to=clean`), 10_000, from);
  t.notMatch(await forwardsChain(), /dnat/, 'no forward is left for A');

  // The right station, the right ticket, too late.
  const v = await viewer({ netns: A.netns, host: r['host'] ?? lan.address, port: Number(r['port']), password: r['ticket'] ?? '', name: 'station-a-expired' });
  try {
    const shot = await v.waitForText(ocrNamePattern(vm), 15_000).catch((e: { shot?: Screenshot }) => e.shot);
    t.notOk(shot !== undefined && ocrShows(shot.text, vm), `the late viewer never shows ${vm}${shot ? ` (${shot.png})` : ''}`);
  } finally {
    await v.close();
  }
  const after = await waitForClean(POOL, 2, 30_000);
  t.equal(vmOf(after, vm)?.uuid, vmOf(before, vm)?.uuid, 'the same VM is clean again: never touched');
  t.notOk(supervisor.lines.slice(from).some((l) => l.includes('event=vm-destroyed') && l.includes(`vm=${vm} `)), 'and never destroyed');
});

t.test('v1: with every VM in a session a third station is QUEUED, then READY once a VM is recycled; one session per station', async (t) => {
  await waitForClean(POOL, 2);
  const from = supervisor.mark();
  // A real Spice client each: with tickets only an authenticated client is
  // connected (a bare TCP connection proves nothing). No OCR: the first test did that.
  const session = async (st: Station, name: string) => {
    const { c } = await hello(st, name);
    const r = await request(c);
    const v = await viewer({ netns: st.netns, host: r['host'] ?? lan.address, port: Number(r['port']), password: r['ticket'] ?? '', name: `queue-${name}` });
    await c.next(/^CONNECTED /, 20_000);
    return { c, r, v };
  };
  const a = await session(A, 'kiosk-a');
  const b = await session(B, 'kiosk-b');
  t.not(a.r['vm'], b.r['vm'], `two stations, two VMs (${a.r['vm']}, ${b.r['vm']})`);

  // One station, one desktop: A asking again on a second connection is refused,
  // whether at HELLO or at REQUEST, and must not be queued for a second VM.
  const again = await open(A, 'TABULA/1 HELLO station=kiosk-a');
  let answer = await again.next(/^(WELCOME|ERR) /, 5_000);
  if (answer.startsWith('WELCOME')) {
    again.send('REQUEST');
    answer = await again.next(/^(ERR|QUEUED|READY) /, 5_000).catch((e: Error) => e.message);
  }
  t.match(answer, /^ERR (409|429) /, `A's second request is refused (${answer})`);
  const againClosed = await closedWithin(again, 5_000);
  t.ok(againClosed, 'and that connection is closed');
  // Were it queued instead, it must not take the VM the third station is to wait for.
  if (!againClosed) await again.kill();
  await sleep(2_000);
  t.notOk(a.c.isClosed() || a.c.lines.some((l) => l.startsWith('ENDED')), "A's session is untouched by the refused second connection");
  t.equal(vmOf(await status(), a.r['vm'] ?? '')?.state, 'in-use', "A's VM is still in use");

  const { c: c3, welcome } = await hello(C, 'kiosk-c');
  t.ok(welcome['pools']?.split(',').includes(`${POOL}:0/2`), `WELCOME tells that no VM is ready (pools=${welcome['pools']})`);
  c3.send('REQUEST');
  const queued = fields(await c3.next(/^QUEUED /, 5_000));
  t.equal(queued['position'], '1', 'QUEUED position=1');

  a.c.send('END');
  t.equal(fields(await a.c.next(/^ENDED /, 10_000))['reason'], 'station', 'A ends its session');
  await a.v.close();
  const ready = fields(await c3.next(/^READY /, 90_000));
  t.equal(ready['vm'], a.r['vm'], "the waiting station gets the fresh VM in A's slot");
  const destroyedAt = supervisor.lines.findIndex((l, i) => i >= from && l.includes('event=vm-destroyed') && l.includes(`vm=${a.r['vm']} `));
  const cleanAt = supervisor.lines.findIndex((l, i) => i > destroyedAt && l.includes('event=vm-clean') && l.includes(`vm=${a.r['vm']} `));
  t.ok(destroyedAt >= 0 && cleanAt > destroyedAt, "only after A's VM was destroyed and its replacement booted clean");

  // The kiosk goes away after its client connected: closing the control connection ends the session.
  const v3 = await viewer({ netns: C.netns, host: ready['host'] ?? lan.address, port: Number(ready['port']), password: ready['ticket'] ?? '', name: 'queue-kiosk-c' });
  await c3.next(/^CONNECTED /, 20_000);
  const endFrom = supervisor.mark();
  await c3.kill();
  await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${esc(ready['vm'] ?? '')} .*session=${esc(ready['session'] ?? '')}`), 30_000, endFrom);
  t.pass("the station's control connection closing ended its session");

  // B's client leaves last, so the next test finds no session of B's.
  await v3.close();
  await b.v.close();
  t.equal(fields(await b.c.next(/^ENDED /, 30_000))['reason'], 'disconnected', 'B is told its client left');
});

t.test('v1: bad input gets its error code (before READY the connection closes) and the server stays up', async (t) => {
  /** Opens with `first`, runs `steps`, then expects one ERR line and the connection closed. */
  const refused = async (first: string, steps: (c: V1Client) => Promise<void>, pattern: RegExp, what: string): Promise<void> => {
    const c = await open(B, first);
    const err = await steps(c)
      .then(() => c.next(/^ERR /, 5_000))
      .catch((e: Error) => e.message);
    t.match(err, pattern, what);
    t.ok(await closedWithin(c, 5_000), `${what}: then the connection is closed`);
    await c.kill();
  };
  const none = async (): Promise<void> => undefined;
  const welcomed = (c: V1Client) => c.next(/^WELCOME /, 5_000);
  await refused('TABULA/1 HELLO', none, /^ERR 400 /, 'HELLO without station=: ERR 400');
  await refused('REQUEST', none, /^ERR 400 /, 'REQUEST before HELLO: ERR 400');
  await refused('TABULA/2 HELLO station=kiosk-b', none, /^ERR 505 unsupported-version 2\b/, 'a version this server does not speak: ERR 505');
  const hi = 'TABULA/1 HELLO station=kiosk-b';
  await refused(hi, async (c) => {
    await welcomed(c);
    c.send('REQUEST pool=nope');
  }, /^ERR 404 no-such-pool\b/, 'REQUEST pool=nope: ERR 404 no-such-pool');
  await refused(hi, async (c) => {
    await welcomed(c);
    c.send('FROB');
  }, /^ERR 400 bad-request\b/, 'an unknown message: ERR 400 bad-request');
  // A clean VM, so the request is served at once and the second one comes during the hand-off.
  await waitForClean(POOL, 2);
  // During a session a bad message is answered, and the visitor's session carries on.
  const twice = await open(B, hi);
  await welcomed(twice);
  twice.send('REQUEST');
  await twice.next(/^READY /, 15_000);
  twice.send('REQUEST');
  t.match(await twice.next(/^ERR /, 5_000), /^ERR 409 wrong-state\b/, 'REQUEST during a session: ERR 409 wrong-state');
  t.notOk(await closedWithin(twice, 1_000), 'and the session carries on');
  twice.send('END');
  t.match(await twice.next(/^ENDED /, 15_000), /reason=station/, 'until the station ends it');
  await twice.kill();

  const { welcome } = await hello(C, 'kiosk-c');
  t.equal(welcome['version'], '1', 'another station is still welcomed');
  t.ok(supervisor.lines.every((l) => !/supervisor-crashed|supervisor-failed/.test(l)), 'the supervisor never fell over');
});
