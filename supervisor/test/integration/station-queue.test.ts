// Stations asking at once never share a VM; when the pool is empty the next
// station waits in line and is served as soon as a VM has been recycled.
import t from 'tap';
import { makeTestRoot, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { makeStationLan, type Station, removeStationWorld, stationsSection } from '../helpers/station-lan.js';
import { SupervisorProcess, waitForClean } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-q`;
const root = await makeTestRoot('q');
const lan = await makeStationLan('q', 5);
const config = await writeConfig(
  root,
  testConfig(root, [{ name: POOL, size: 4, spicePortBase: 5920, consoleTickets: false }]).replace('[[pool]]', `${stationsSection(lan, 8)}\n\n[[pool]]`).replace('heartbeat = 2', 'heartbeat = 2\nmax_parallel_boots = 4'),
);
const supervisor = new SupervisorProcess(config);
const clients: Array<ReturnType<Station['spawn']>> = [];

t.teardown(async () => {
  for (const c of clients) c.kill('SIGKILL');
  await supervisor.stop();
  await removeDomains(`tabula-${POOL}-`);
  await root.cleanup();
  await removeStationWorld(lan);
});

/** A v0 station whose client then holds a TCP connection to its console. */
function station(s: Station): { out: () => string } {
  const script = `exec 3< <(exec nc ${lan.address} 5905)
while IFS= read -r line <&3; do
  case "$line" in *"RULE ADDED, CONNECT NOW"*) echo CONNECTING; exec nc ${lan.address} 5906 ;; esac
done`;
  const child = s.spawn(['bash', '-c', script]);
  clients.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  return { out: () => out };
}

function handedTo(address: string): string | undefined {
  const line = supervisor.lines.find((l) => l.includes('event=session-connected') && l.includes(`station=${address} `));
  return line ? /vm=(\S+)/.exec(line)?.[1] : undefined;
}

t.test('four stations at once get four different VMs; a fifth waits and is served after a recycle', async (t) => {
  await waitForClean(POOL, 4);
  await supervisor.waitForLine(/event=signal-port-open/);
  const first = lan.stations.slice(0, 4);
  first.forEach(station);
  const vms = await waitFor('four sessions', async () => {
    const got = first.map((s) => handedTo(s.address));
    return got.every((v) => v !== undefined) ? (got as string[]) : undefined;
  }, 60_000);
  t.equal(new Set(vms).size, 4, `four distinct VMs: ${vms.join(', ')}`);

  const fifth = lan.stations[4] as Station;
  const waiting = station(fifth);
  await new Promise((r) => setTimeout(r, 3000));
  t.notMatch(waiting.out(), /CONNECTING/, 'the fifth station is told nothing while no VM is clean');
  t.equal(handedTo(fifth.address), undefined, 'and is handed nothing');

  // Station 0 leaves: its VM is destroyed, a fresh clone boots, the fifth gets it.
  await (lan.stations[0] as Station).killAll();
  await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${vms[0]} reason=session-ended`), 30_000);
  const fifthVm = await waitFor('fifth served', async () => handedTo(fifth.address), 90_000);
  t.equal(fifthVm, vms[0], "the fifth station gets the recycled slot's fresh VM");
  t.match(waiting.out(), /CONNECTING/, 'and its script connected');
  const uuids = supervisor.lines.filter((l) => l.includes(`vm=${vms[0]}`) && l.includes('event=vm-undefined'));
  t.ok(uuids.length >= 1, 'the old VM in that slot was undefined before the new one was handed out');
});
