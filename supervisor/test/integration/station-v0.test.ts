// A station gets a desktop with the seed's protocol (v0): it connects to the
// signal port and says nothing, waits for "RULE ADDED, CONNECT NOW", then
// connects to the Spice port; the forward exists for that station only.
import { join } from 'node:path';
import t from 'tap';
import { BUILD, makeTestRoot, testConfig, waitFor, writeConfig, TEST_PREFIX, run } from '../helpers/env.js';
import { guestBoots } from '../helpers/guest.js';
import { makeStationLan, probe, type Station, removeStationWorld, stationsSection, TEST_TABLE } from '../helpers/station-lan.js';
import { status, SupervisorProcess, waitForClean, type StatusJson } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';
import { ocrNamePattern, ocrShows, startViewer } from '../helpers/spice-client.js';

const POOL = `${TEST_PREFIX}-v0`;
const PREFIX = `tabula-${POOL}-`;
const root = await makeTestRoot('v0');
const lan = await makeStationLan('v0', 2);
const [A, B] = lan.stations as [Station, Station];
const storage = join(root.dir, 'state/pools', POOL);
const ARTIFACTS = join(BUILD, 'test-reports', 'station-v0');
const config = await writeConfig(root, testConfig(root, [{ name: POOL, size: 2, spicePortBase: 5920, consoleTickets: false }]).replace('[[pool]]', `${stationsSection(lan, 6)}\n\n[[pool]]`));
const supervisor = new SupervisorProcess(config);

t.teardown(async () => {
  await supervisor.stop();
  await removeDomains(PREFIX);
  await root.cleanup();
  await removeStationWorld(lan);
});

/** The seed's station script in essence: wait for the line, then start the client. */
function seedStation(station: Station, client: string): ReturnType<Station['spawn']> {
  const script = `exec 3< <(exec nc ${lan.address} 5905)
while IFS= read -r line <&3; do
  case "$line" in *"RULE ADDED, CONNECT NOW"*) echo CONNECTING; exec ${client} ;; esac
done
echo NO-LINE`;
  return station.spawn(['bash', '-c', script]);
}

function vmOf(s: StatusJson, name: string) {
  return s.pools.find((p) => p.name === POOL)?.vms.find((v) => v.name === name);
}

t.test('v0: a silent station gets a forward for itself only, then its VM is recycled when it leaves', async (t) => {
  await waitForClean(POOL, 2);
  await supervisor.waitForLine(/event=signal-port-open/);
  // The client holds a plain TCP connection to the console, as a Spice client's would be.
  const a = seedStation(A, `nc ${lan.address} 5906`);
  let out = '';
  a.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const handed = await supervisor.waitForLine(/event=vm-handed-out .*station=169\.254\.24\.10/, 30_000);
  const vm = /vm=(\S+)/.exec(handed)?.[1] as string;
  t.ok(vm.startsWith(PREFIX), `A was handed ${vm}`);
  await supervisor.waitForLine(new RegExp(`event=session-connected vm=${vm} .*station=169\\.254\\.24\\.10`), 30_000);
  t.match(out, /CONNECTING/, 'the station saw RULE ADDED, CONNECT NOW');
  const s = await status();
  t.equal(vmOf(s, vm)?.state, 'in-use', 'the VM is in use');

  t.equal(await probe(B, lan.address, 5906), 'refused', 'B cannot use the Spice port: the forward matches A only');
  await B.exec(['ip', 'route', 'add', '169.254.25.0/24', 'via', lan.address]);
  const port = vmOf(s, vm)?.spicePort as number;
  t.equal(await probe(B, '169.254.25.1', port), 'timeout', "B cannot reach the VM's console directly, even with a route");
  t.equal(await probe(B, lan.address, port), 'timeout', 'nor the console port on the LAN address');

  await waitFor('forward closed', async () => {
    const { stdout } = await run('nft', ['list', 'chain', 'inet', TEST_TABLE, 'forwards']);
    return stdout.includes('dnat') ? undefined : true;
  }, 15_000);
  t.pass('the forward is removed once the station is connected');
  t.equal(await probe(A, lan.address, 5906), 'refused', 'a second connection from A finds no forward');

  a.kill('SIGKILL');
  await A.killAll();
  const ended = await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${vm} reason=session-ended`), 30_000);
  t.pass('the session ended when the client left, and the VM was destroyed');
  t.match(ended, /station=169\.254\.24\.10 session=\S+ handed=\S+ connected=\S+ session_s=\d+/, 'logged with station, session, times and duration');
  await waitForClean(POOL, 2);
  const boots = await guestBoots(join(storage, `${vm}.console.log`));
  t.equal(boots.length, 1, 'its slot holds a fresh VM');
  t.equal(boots[0]?.previousMarker, 'none', "the replacement's disk has no marker from A's session");
});

t.test('v0: a real Spice client on the station shows its own VM; leaving recycles it', async (t) => {
  await waitForClean(POOL, 2);
  const from = supervisor.mark();
  const script = A.spawn(['bash', '-c', `exec 3< <(exec nc ${lan.address} 5905)
while IFS= read -r line <&3; do case "$line" in *"RULE ADDED, CONNECT NOW"*) echo CONNECTING; exit 0 ;; esac; done`]);
  let out = '';
  script.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the line', async () => (out.includes('CONNECTING') ? true : undefined), 30_000, 100);
  // What the seed's station does on that line: remote-viewer spice://SERVER:5906, no password.
  const viewer = await startViewer({ netns: A.netns, host: lan.address, port: 5906, artifactsDir: ARTIFACTS, name: 'station-a-v0' });
  try {
    const handed = await supervisor.waitForLine(/event=vm-handed-out .*station=169\.254\.24\.10/, 10_000, from);
    const vm = /vm=(\S+)/.exec(handed)?.[1] as string;
    const shot = await viewer.waitForText(ocrNamePattern(vm), 90_000);
    t.ok(ocrShows(shot.text, vm), `the station's screen shows ${vm} (${shot.png})`);
    const other = vm.endsWith('-0') ? vm.replace(/-0$/, '-1') : vm.replace(/-1$/, '-0');
    t.notOk(ocrShows(shot.text, other), 'and not the other VM');
    await supervisor.waitForLine(new RegExp(`event=session-connected vm=${vm} `), 30_000, from);
    const [boot] = await guestBoots(join(storage, `${vm}.console.log`));

    await viewer.close();
    await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${vm} reason=session-ended`), 60_000, from);
    await waitForClean(POOL, 2);
    const boots = await guestBoots(join(storage, `${vm}.console.log`));
    t.not(boots[0]?.session, boot?.session, 'the slot holds a new VM');
    t.equal(boots[0]?.previousMarker, 'none', "whose disk has no marker from A's session");
  } finally {
    await viewer.close();
    script.kill('SIGKILL');
  }
});

t.test('v0: a station that never connects leaves its VM clean (same VM, not recycled)', async (t) => {
  const before = await status();
  const from = supervisor.mark();
  const b = B.spawn(['bash', '-c', `nc ${lan.address} 5905 > /dev/null`]);
  const handed = await supervisor.waitForLine(/event=vm-handed-out .*station=169\.254\.24\.11/, 30_000, from);
  const vm = /vm=(\S+)/.exec(handed)?.[1] as string;
  await supervisor.waitForLine(new RegExp(`event=handoff-not-taken vm=${vm} .*back_to=clean`), 30_000, from);
  b.kill('SIGKILL');
  const after = await waitForClean(POOL, 2);
  t.equal(vmOf(after, vm)?.uuid, vmOf(before, vm)?.uuid, 'the same VM is clean again');
});

t.test('the signal port refuses bad input with a code and stays up for others', async (t) => {
  const send = (text: string) => A.exec(['bash', '-c', `printf '%s' "$1" | timeout 3 nc -q 2 ${lan.address} 5905`, '_', text], 10_000);
  t.match((await send('hello there\n')).stdout, /^ERR 400 bad-request/, 'garbage: ERR 400');
  t.match((await send('TABULA/9\n')).stdout, /^ERR 505 unsupported-version 9/, 'unknown version: ERR 505');
  // A station that starts a line and never finishes it is not taken for a silent v0 station.
  const from = supervisor.mark();
  const slow = await A.exec(['bash', '-c', `(printf 'TABULA/1 HEL'; sleep 7) | timeout 9 nc ${lan.address} 5905`], 15_000);
  t.match(slow.stdout, /^ERR 408 request-timeout/, 'a half-sent line: ERR 408 after a while');
  t.notOk(supervisor.lines.slice(from).some((l) => l.includes('event=vm-handed-out')), 'and no VM was handed out for it');
  const long = await send('x'.repeat(5000));
  t.match(long.stdout, /^ERR 413 line-too-long/, 'an over-long line: ERR 413, connection closed');

  // A flood from one station: one request is served, the others are told so, and
  // beyond the connection limit refused; meanwhile another station is served.
  const flood = B.spawn(['bash', '-c', `for i in $(seq 80); do timeout 8 nc ${lan.address} 5905 > /tmp/flood-$$-$i.out 2>&1 & done; wait; cat /tmp/flood-$$-*.out; rm -f /tmp/flood-$$-*.out`]);
  let floodOut = '';
  flood.stdout?.on('data', (d: Buffer) => (floodOut += d.toString()));
  const served = A.spawn(['bash', '-c', `timeout 8 nc ${lan.address} 5905`]);
  let servedOut = '';
  served.stdout?.on('data', (d: Buffer) => (servedOut += d.toString()));
  await waitFor('A served during the flood', async () => (servedOut.includes('RULE ADDED, CONNECT NOW') ? true : undefined), 15_000, 100);
  t.pass('another station is served during the flood');
  await new Promise((r) => flood.once('exit', r));
  t.match(floodOut, /ERR 429 (already-waiting|too-many-connections)/, 'the flooding station gets ERR 429 for its extra requests');
  t.ok((floodOut.match(/RULE ADDED, CONNECT NOW/g) ?? []).length >= 1, 'and one of its requests is served');
  t.match(supervisor.log(), /station-refused station=169\.254\.24\.11 reason="too many connections from this station"/, 'the excess was turned away at the door');
  served.kill('SIGKILL');
  await waitFor('pool settled', async () => ((await status()).pools[0]?.counts['clean'] === 2 ? true : undefined), 60_000);
  t.ok(supervisor.lines.every((l) => !/supervisor-crashed|supervisor-failed/.test(l)), 'the supervisor never fell over');
});
