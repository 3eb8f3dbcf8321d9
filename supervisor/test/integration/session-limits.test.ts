// Session limits: a v1 station that stops reporting input is warned, then its
// session ends (idle) and the VM is recycled, while one that keeps reporting
// stays; a v0 station, which reports nothing, is held by the time limit. Each
// end lands in the session log with its reason.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { BUILD, makeTestRoot, testConfig, TEST_PREFIX, writeConfig } from '../helpers/env.js';
import { startViewer, type Viewer } from '../helpers/spice-client.js';
import { makeStationLan, removeStationWorld, stationsSection, type Station } from '../helpers/station-lan.js';
import { status, SupervisorProcess, tabulactl, waitForClean } from '../helpers/supervisor-process.js';
import { connectV1, fields, type V1Client } from '../helpers/v1-client.js';
import { removeDomains } from '../helpers/virsh.js';

const IDLE_POOL = `${TEST_PREFIX}-idle`;
const CAP_POOL = `${TEST_PREFIX}-cap`;
const IDLE_S = 5;
const WARN_S = 3;
const CAP_S = 8;
const root = await makeTestRoot('limits');
const lan = await makeStationLan('lim', 3);
const [A, B, C] = lan.stations as [Station, Station, Station];
const ARTIFACTS = join(BUILD, 'test-reports', 'session-limits');
// The v0 pool first: a v0 station gets the first pool.
const config = await writeConfig(
  root,
  testConfig(root, [
    { name: CAP_POOL, size: 1, spicePortBase: 5930, consoleTickets: false, extra: [`max_session = ${CAP_S}`, 'idle_timeout = 0'] },
    { name: IDLE_POOL, size: 2, spicePortBase: 5920, extra: [`idle_timeout = ${IDLE_S}`, `session_warning = ${WARN_S}`, 'max_session = 0'] },
  ]).replace('[[pool]]', `${stationsSection(lan, 10)}\n\n[[pool]]`),
);
let supervisor = new SupervisorProcess(config);
const clients: V1Client[] = [];
const viewers: Viewer[] = [];

t.teardown(async () => {
  await Promise.all(clients.map((c) => c.kill()));
  await Promise.all(viewers.map((v) => v.close()));
  await supervisor.stop();
  await removeDomains(`tabula-${IDLE_POOL}-`);
  await removeDomains(`tabula-${CAP_POOL}-`);
  await root.cleanup();
  await removeStationWorld(lan);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A v1 session on the idle pool with a real Spice client on the console. */
async function v1Session(station: Station, name: string): Promise<{ c: V1Client; session: string; vm: string }> {
  const c = await connectV1(station, { host: lan.address, first: `TABULA/1 HELLO station=${name}` });
  clients.push(c);
  await c.next(/^WELCOME /, 5_000);
  c.send(`REQUEST pool=${IDLE_POOL}`);
  const r = fields(await c.next(/^READY /, 30_000));
  viewers.push(await startViewer({ artifactsDir: ARTIFACTS, netns: station.netns, host: r['host'] ?? lan.address, port: Number(r['port']), password: r['ticket'] ?? '', name }));
  await c.next(/^CONNECTED /, 30_000);
  return { c, session: r['session'] ?? '', vm: r['vm'] ?? '' };
}

async function sessionLog(): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(root.dir, 'state/sessions/sessions.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

t.test('idle: a station that stops reporting input is warned, then its session ends; one that reports stays', async (t) => {
  await waitForClean(IDLE_POOL, 2);
  await waitForClean(CAP_POOL, 1);
  await supervisor.waitForLine(/event=signal-port-open/, 30_000);
  const a = await v1Session(A, 'kiosk-a');
  const b = await v1Session(B, 'kiosk-b');
  const connectedAt = Date.now();
  // B's visitor keeps typing; A's walked away.
  const typing = setInterval(() => b.c.send('INPUT'), 1_000);
  try {
    const warn = fields(await a.c.next(/^WARN /, (IDLE_S + 5) * 1000));
    t.equal(warn['session'], a.session, 'WARN names the session');
    t.equal(warn['reason'], 'idle', 'reason=idle');
    const left = Number(warn['seconds']);
    t.ok(left > 0 && left <= WARN_S, `a countdown of at most session_warning (${left} s)`);
    const ended = fields(await a.c.next(/^ENDED /, (IDLE_S + 10) * 1000));
    const after = (Date.now() - connectedAt) / 1000;
    t.equal(ended['reason'], 'idle', `A: ENDED reason=idle (${after.toFixed(1)} s after connecting)`);
    t.ok(after >= IDLE_S - 0.5, 'not before idle_timeout');
    await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${a.vm} reason=idle`), 30_000);
    t.pass("A's VM is destroyed");

    await sleep(IDLE_S * 1000);
    t.notOk(b.c.lines.some((l) => /^(WARN|ENDED) /.test(l)), 'B, reporting input, is neither warned nor ended');
    const vmB = (await status()).pools.find((p) => p.name === IDLE_POOL)?.vms.find((v) => v.name === b.vm);
    t.equal(vmB?.state, 'in-use', "B's VM is still in use");
  } finally {
    clearInterval(typing);
  }

  // B stops: warned; one key press calls the countdown off; then B stops for good.
  t.equal(fields(await b.c.next(/^WARN /, (IDLE_S + 5) * 1000))['reason'], 'idle', 'B is warned once it stops');
  b.c.send('INPUT');
  t.equal(fields(await b.c.next(/^WARN /, 5_000))['reason'], 'none', 'input during the countdown: WARN reason=none');
  t.equal(fields(await b.c.next(/^ENDED /, (IDLE_S + 10) * 1000))['reason'], 'idle', 'then B is ended too');

  await waitForClean(IDLE_POOL, 2);
  t.pass('the pool is whole again with fresh clones');
  const logged = await sessionLog();
  const entryA = logged.find((e) => e['session'] === a.session);
  t.match(entryA, { pool: IDLE_POOL, vm: a.vm, protocol: 'v1', reason: 'idle', station: { address: A.address, name: 'kiosk-a' } }, "A's session is in the log");
  t.ok(typeof entryA?.['requestedAt'] === 'number' && typeof entryA?.['connectedAt'] === 'number' && typeof entryA?.['endedAt'] === 'number', 'with its times');
  t.match(String((entryA?.['station'] as Record<string, unknown> | undefined)?.['mac'] ?? ''), /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, "and the station's MAC");
  t.equal(logged.filter((e) => e['session'] === b.session).length, 1, "B's session is in the log once");
  t.ok(supervisor.lines.some((l) => l.includes('event=session-record') && l.includes(`session=${a.session}`) && l.includes('reason=idle')), 'and in the journal');
});

t.test('time limit: a v0 session, which reports nothing, ends at max_session', async (t) => {
  await waitForClean(CAP_POOL, 1);
  const c = await connectV1(C, { host: lan.address });
  clients.push(c);
  await c.next(/RULE ADDED, CONNECT NOW/, 30_000);
  const from = supervisor.mark();
  viewers.push(await startViewer({ artifactsDir: ARTIFACTS, netns: C.netns, host: lan.address, port: 5906, name: 'v0-capped' }));
  const connected = await supervisor.waitForLine(/event=session-connected vm=\S+ pool=it-cap /, 30_000, from);
  const vm = /vm=(\S+)/.exec(connected)?.[1] ?? '';
  const start = Date.now();
  const destroyed = await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${vm} reason=time-limit`), (CAP_S + 20) * 1000, from);
  const after = (Date.now() - start) / 1000;
  t.ok(destroyed, `the VM is destroyed with reason=time-limit (${after.toFixed(1)} s after connecting)`);
  t.ok(after >= CAP_S - 1, 'not before max_session');
  const entry = (await sessionLog()).find((e) => e['vm'] === vm && e['reason'] === 'time-limit');
  t.match(entry, { protocol: 'v0', pool: CAP_POOL, station: { address: C.address } }, 'logged with reason time-limit');
  await waitForClean(CAP_POOL, 1);
});

t.test('tabulactl sessions: the log as a table, JSON and CSV; --since filters; bad --since is refused', async (t) => {
  const table = await tabulactl('sessions');
  t.equal(table.code, 0, 'exit 0');
  t.match(table.stdout, /^ENDED\s+STATION\s+POOL\s+VM\s+WAITED\s+USED\s+REASON/m, 'a header');
  t.match(table.stdout, new RegExp(`kiosk-a \\(${A.address.replace(/\./g, '\\.')}\\)\\s+${IDLE_POOL}\\s+\\S+\\s+\\S+\\s+\\S+\\s+idle`), 'a row for the idle session, with the station name');
  const json = await tabulactl('sessions', '--json');
  const entries = JSON.parse(json.stdout) as Array<{ reason: string; station: { address: string }; endedAt: number }>;
  t.ok(entries.some((e) => e.reason === 'idle' && e.station.address === A.address), '--json: the entries');
  t.ok(entries.some((e) => e.reason === 'time-limit'), '--json: the v0 one too');
  const csv = await tabulactl('sessions', '--csv');
  const [header, ...rows] = csv.stdout.trim().split('\n');
  t.match(header, /^session,station_address,station_mac,station_name,pool,vm,protocol,requested,handed,connected,ended,reason,wait_s,connect_s,session_s$/, '--csv: the header');
  t.equal(rows.length, entries.length, '--csv: one row per session');
  const future = await tabulactl('sessions', '--json', '--since', new Date(Date.now() + 86_400_000).toISOString().slice(0, 10));
  t.same(JSON.parse(future.stdout), [], '--since tomorrow: nothing');
  const recent = await tabulactl('sessions', '--json', '--since', '1h');
  t.equal((JSON.parse(recent.stdout) as unknown[]).length, entries.length, '--since 1h: all of them');
  const bad = await tabulactl('sessions', '--since', 'yesterdayish');
  t.equal(bad.code, 2, 'a bad --since: exit 2');
  t.match(bad.stderr, /--since "yesterdayish": expected a duration/, 'with what is wrong');
});

t.test('metrics: Prometheus text on the local endpoint, counting what happened', async (t) => {
  const res = await fetch('http://127.0.0.1:9184/metrics');
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const value = (series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  t.equal(value(`tabula_vms{pool="${IDLE_POOL}",state="clean"}`), 2, 'VMs per pool and state');
  t.equal(value(`tabula_pool_healthy{pool="${IDLE_POOL}"}`), 1, 'pool health');
  t.equal(value(`tabula_queue_length{pool="${IDLE_POOL}"}`), 0, 'queue length');
  t.equal(value('tabula_supervisor_state{state="ready"}'), 1, 'supervisor state');
  t.equal(value(`tabula_handoffs_total{pool="${IDLE_POOL}",protocol="v1"}`), 2, 'hand-offs');
  t.equal(value(`tabula_handoffs_total{pool="${CAP_POOL}",protocol="v0"}`), 1);
  t.equal(value(`tabula_sessions_ended_total{pool="${IDLE_POOL}",reason="idle"}`), 2, 'sessions ended by reason');
  t.equal(value(`tabula_sessions_ended_total{pool="${CAP_POOL}",reason="time-limit"}`), 1);
  t.equal(value(`tabula_handoff_seconds_count{pool="${IDLE_POOL}"}`), 2, 'hand-off latency histogram');
  t.equal(value(`tabula_connect_seconds_count{pool="${IDLE_POOL}"}`), 2, 'connect latency histogram');
  t.ok((value(`tabula_recycle_seconds_count{pool="${IDLE_POOL}"}`) ?? 0) >= 2, 'recycle-time histogram');
  t.ok((value(`tabula_clone_seconds_count{pool="${IDLE_POOL}"}`) ?? 0) >= 4, 'clone-time histogram');
  t.equal(value(`tabula_session_seconds_count{pool="${IDLE_POOL}"}`), 2, 'session durations');
  t.match(text, /# TYPE tabula_failures_total counter/, 'failures by code (none yet)');
});

t.test('RESUME: after the supervisor was killed, a v1 station takes its running session up again', async (t) => {
  await waitForClean(IDLE_POOL, 2);
  const a = await v1Session(A, 'kiosk-a');
  supervisor.signal('SIGKILL');
  await supervisor.exited;
  await a.c.closed;
  t.pass("the station's control connection went with the supervisor");
  supervisor = new SupervisorProcess(config);
  await supervisor.waitForLine(/event=signal-port-open/, 60_000);

  const wrong = await connectV1(B, { host: lan.address, first: 'TABULA/1 HELLO station=kiosk-b' });
  clients.push(wrong);
  await wrong.next(/^WELCOME /, 5_000);
  wrong.send(`RESUME session=${a.session}`);
  t.match(await wrong.next(/^ERR /, 5_000), /^ERR 404 no-such-session/, "another station cannot take A's session");

  const again = await connectV1(A, { host: lan.address, first: 'TABULA/1 HELLO station=kiosk-a' });
  clients.push(again);
  await again.next(/^WELCOME /, 5_000);
  again.send(`RESUME session=${a.session}`);
  t.equal(fields(await again.next(/^CONNECTED /, 5_000))['session'], a.session, 'RESUME: CONNECTED with the same session');
  const vm = (await status()).pools.find((p) => p.name === IDLE_POOL)?.vms.find((v) => v.name === a.vm);
  t.equal(vm?.state, 'in-use', 'its VM is still in use, never recycled');
  // Idle is judged again on this channel: a full period from the restart, then the warning.
  t.equal(fields(await again.next(/^WARN /, (IDLE_S + 5) * 1000))['reason'], 'idle', 'the resumed channel is warned like any other');
  again.send('END');
  t.equal(fields(await again.next(/^ENDED /, 10_000))['reason'], 'station', 'and END ends it');
  await waitForClean(IDLE_POOL, 2);
});
