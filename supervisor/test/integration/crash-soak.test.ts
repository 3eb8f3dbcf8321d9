// The crash soak: two stations come and go without pause while the
// supervisor is killed (SIGKILL) at random moments, 50 times over. After each
// kill a new supervisor must keep every live session bound to its station;
// no VM ever handed out may be clean again; every tenth kill, and at the end,
// the pool settles with nothing leaked and every session logged once.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ChildProcess } from 'node:child_process';
import { makeTestRoot, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { domains, forwards, leaks, loggedSessions, ReuseWatch, sessionLogFile } from '../helpers/invariants.js';
import { makeStationLan, removeStationWorld, stationsSection, TEST_TABLE, type Station } from '../helpers/station-lan.js';
import { SupervisorProcess, waitForClean } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';

const CYCLES = Number(process.env['TABULA_SOAK_CYCLES'] ?? 50);
const POOL = `${TEST_PREFIX}-soak`;
const PREFIX = `tabula-${POOL}-`;
const root = await makeTestRoot('soak');
const lan = await makeStationLan('soak', 2);
const storage = join(root.dir, 'state/pools', POOL);
const config = await writeConfig(root, testConfig(root, [{ name: POOL, size: 2, spicePortBase: 5950, consoleTickets: false }]).replace('[[pool]]', `${stationsSection(lan, 6)}\n\n[[pool]]`));
const watch = new ReuseWatch(PREFIX);
// A fixed seed: a failure can be replayed.
let seed = Number(process.env['TABULA_SOAK_SEED'] ?? 20261122);
const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const between = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let supervisor: SupervisorProcess | undefined;

/** A station that asks, uses its VM for a while, leaves, and asks again; it can be held still. */
class Visitor {
  /** Held until the pool is up, so the first pool can fill. */
  paused = true;
  stopped = false;
  #client: ChildProcess | undefined;
  readonly #loop: Promise<void>;

  constructor(readonly station: Station) {
    this.#loop = this.#run();
  }

  /** Whether its client process runs (waiting for its turn, or connected). */
  get using(): boolean {
    return this.#client !== undefined && this.#client.exitCode === null && this.#client.signalCode === null;
  }

  /** Whether the station holds an established connection to the Spice port now (asked of its kernel). */
  async holding(): Promise<boolean> {
    const r = await this.station.exec(['ss', '-Htn', 'state', 'established', 'dst', `${lan.address}:5906`]);
    return r.code === 0 && r.stdout.trim() !== '';
  }

  async #run(): Promise<void> {
    while (!this.stopped) {
      if (this.paused) {
        await sleep(200);
        continue;
      }
      const script = `exec 3< <(exec nc ${lan.address} 5905)
while IFS= read -r line <&3; do
  case "$line" in *"RULE ADDED, CONNECT NOW"*) exec nc ${lan.address} 5906 ;; esac
done`;
      const child = this.station.spawn(['bash', '-c', script]);
      this.#client = child;
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      const useFor = between(1_000, 6_000);
      const started = Date.now();
      // Uses the desktop for a while (or the server went away): then leaves, unless held still.
      while (this.using && (this.paused || Date.now() - started < useFor) && !this.stopped) await sleep(100);
      child.kill('SIGKILL');
      await exited;
      await sleep(between(0, 2_000));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.#client?.kill('SIGKILL');
    await this.#loop;
  }
}

const visitors = lan.stations.map((s) => new Visitor(s));

t.teardown(async () => {
  await Promise.all(visitors.map((v) => v.stop()));
  await watch.stop();
  await supervisor?.stop();
  await removeDomains(PREFIX);
  await root.cleanup();
  await removeStationWorld(lan);
});

async function settledAndClean(t: Test): Promise<void> {
  for (const v of visitors) v.paused = true;
  await Promise.all(lan.stations.map((s) => s.killAll()));
  await waitFor(
    'the pool settled',
    async () => {
      const d = await domains(PREFIX);
      return d.length === 2 && d.every((x) => x.state === 'clean') && (await forwards(TEST_TABLE)).length === 0 ? true : undefined;
    },
    180_000,
    500,
  );
  t.same(await leaks(PREFIX, storage), [], 'settled: nothing leaked');
  const logged = await loggedSessions(sessionLogFile(join(root.dir, 'state')));
  const missing = [...watch.connectedSessions].filter((s) => logged.get(s) !== 1);
  t.same(missing, [], `every connected session is in the log once (${watch.connectedSessions.size} so far)`);
  for (const v of visitors) v.paused = false;
}

t.test(`soak: ${CYCLES} random kills with stations coming and going`, async (t) => {
  supervisor = new SupervisorProcess(config);
  await waitForClean(POOL, 2);
  for (const v of visitors) v.paused = false;
  let intactChecked = 0;
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    await sleep(between(500, 5_000));
    // Held still across the kill and restart, so a session that ends is the supervisor's doing.
    for (const v of visitors) v.paused = true;
    supervisor.signal('SIGKILL');
    await supervisor.exited;
    const live = (await domains(PREFIX)).filter((d) => d.state === 'in-use' && d.connected);
    // Which stations' clients are on their console now: held still, they stay on unless their VM is
    // taken away (a visitor that left just as the kill came is gone by now).
    const heldBefore = new Set<string>();
    for (const v of visitors) if (await v.holding()) heldBefore.add(v.station.address);
    supervisor = new SupervisorProcess(config);
    await supervisor.waitForLine(/event=supervisor-ready/, 60_000);
    await sleep(2_500);
    const after = await domains(PREFIX);
    for (const d of live) {
      // A session whose client is on must survive.
      const still = after.find((x) => x.uuid === d.uuid);
      if (d.station === undefined || !heldBefore.has(d.station)) continue;
      if (still?.state !== 'in-use' || still.session !== d.session) {
        t.fail(`cycle ${cycle}: session ${d.session} on ${d.name} did not survive the restart (now ${still?.state ?? 'gone'})`);
      }
      intactChecked++;
    }
    if (watch.violations.length > 0) t.fail(`cycle ${cycle}: ${watch.violations.join('; ')}`);
    for (const v of visitors) v.paused = false;
    if (cycle % 10 === 0) await settledAndClean(t);
  }
  t.ok(intactChecked > 0, `live sessions were checked across restarts (${intactChecked})`);
  t.same(watch.violations, [], 'no VM handed out or dirty was ever clean again');
  t.ok(watch.connectedSessions.size >= 10, `stations really used VMs (${watch.connectedSessions.size} sessions)`);
});
