// The admin side of org.tabula.Supervisor1 and tabulactl on top of it, against
// a real supervisor with TCG VMs and a real station: sessions as objects and
// signals, drain, resize, ReloadConfig, FactoryReset, refusals with their error
// names, and who may do what (bus policy, then polkit, with throwaway accounts).
import { copyFile, chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import dbus from 'dbus-next';
import t from 'tap';
import { addUser, allowOnBus, grantPolkit, removeGrants, removeUser, tabulactlAs } from '../helpers/accounts.js';
import { contractMembers, documentedMembers, introspect, SupervisorBus } from '../helpers/bus.js';
import { makeTestRoot, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { makeStationLan, removeStationWorld, stationsSection, type Station } from '../helpers/station-lan.js';
import { status, SupervisorProcess, tabulactl, waitForClean } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-admin`;
const LATE = `${TEST_PREFIX}-admin-late`;
const PREFIX = `tabula-${TEST_PREFIX}-admin`;
const ROOT = '/org/tabula/Supervisor1';
const POOL_PATH = `${ROOT}/pool/${POOL.replace(/-/g, '_2d')}`;
const IFACE = 'org.tabula.Supervisor1';
const POOL_IFACE = 'org.tabula.Supervisor1.Pool';
const ERROR = 'org.tabula.Supervisor1.Error';
const READER = 'tabula-it-reader';
const OTHER = 'tabula-it-other';

const root = await makeTestRoot('admin');
const lan = await makeStationLan('adm', 2);
const [A, B] = lan.stations as [Station, Station];
const late = join(root.dir, 'late.qcow2');
const resetScript = join(root.dir, 'factory-reset');
await writeFile(resetScript, `#!/bin/sh\necho "$@" >>"${root.dir}/reset-args"\nexit "$(cat "${root.dir}/reset-exit" 2>/dev/null || echo 0)"\n`);
await chmod(resetScript, 0o755);
const configText = testConfig(
  root,
  [
    { name: POOL, size: 1, spicePortBase: 6010, consoleTickets: false },
    { name: LATE, size: 0, spicePortBase: 6020, golden: late },
  ],
  `factory_reset_command = ["${resetScript}", "--from-test"]`,
).replace('[[pool]]', `${stationsSection(lan, 8)}\n\n[[pool]]`);
const configPath = await writeConfig(root, configText);
let supervisor = new SupervisorProcess(configPath);
const bus = await SupervisorBus.open();
await addUser(READER, true);
await addUser(OTHER, false);

t.teardown(async () => {
  bus.close();
  await supervisor.stop();
  await removeGrants();
  await removeUser(READER);
  await removeUser(OTHER);
  await removeDomains(PREFIX);
  await root.cleanup();
  await removeStationWorld(lan);
});

const ctlJson = async <T>(...args: string[]): Promise<T> => {
  const r = await tabulactl('--json', ...args);
  if (r.code !== 0) throw new Error(`tabulactl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};

interface PoolJson {
  name: string;
  size: number;
  drained: boolean;
  counts: Record<string, number>;
}
interface SessionJson {
  id: string;
  station: string;
  address: string;
  pool: string;
  vm: string;
  protocol: string;
  startedAt: number;
  connectedAt?: number;
  lastActivity: number;
}

/** A seed-style (v0) station holding a plain TCP connection to its console, as a Spice client would. */
function seedStation(station: Station): ReturnType<Station['spawn']> {
  return station.spawn([
    'bash',
    '-c',
    `exec 3< <(exec nc ${lan.address} 5905)
while IFS= read -r line <&3; do
  case "$line" in *"RULE ADDED, CONNECT NOW"*) exec nc ${lan.address} 5906 ;; ERR*) echo "$line"; exit 1 ;; esac
done`,
  ]);
}

t.test('a reconcile round that changes nothing sends no PropertiesChanged (and a real change does)', async (t) => {
  await waitForClean(POOL, 1);
  await supervisor.waitForLine(/event=signal-port-open/);
  await new Promise((r) => setTimeout(r, 3_000));
  const from = bus.signals.length;
  const mark = supervisor.mark();
  const r = await tabulactl('reload');
  t.equal(r.code, 0, `tabulactl reload: ${r.stderr}`);
  await supervisor.waitForLine(/event=config-reloaded/, 10_000, mark);
  // Reload, then three heartbeats of rounds over an unchanged pool.
  await new Promise((r) => setTimeout(r, 7_000));
  t.same(bus.heard('PropertiesChanged', from), [], 'no PropertiesChanged at all');

  t.equal((await tabulactl('drain', POOL)).code, 0);
  await waitFor('PropertiesChanged of Drained', async () => (bus.heard('PropertiesChanged', from).some((s) => s.path === POOL_PATH && JSON.stringify(s.body).includes('Drained')) ? true : undefined), 10_000);
  t.pass('draining is a real change, and it is told');
  t.equal((await tabulactl('undrain', POOL)).code, 0);
});

t.test('a pool whose golden image appears becomes healthy: PoolHealthChanged', async (t) => {
  const s = await status();
  t.match(s.pools.find((p) => p.name === LATE), { healthy: false }, `${LATE} starts unhealthy (no golden image)`);
  const from = bus.signals.length;
  await copyFile(root.golden, late);
  const heard = await waitFor('PoolHealthChanged', async () => bus.heard('PoolHealthChanged', from)[0], 30_000);
  t.same(heard.body, [LATE, true, ''], 'pool, healthy, no reason');
});

t.test('a session is an object with its station, pool and VM; ending it over D-Bus recycles the VM and says SessionEnded', async (t) => {
  const before = (await status()).pools.find((p) => p.name === POOL)?.vms[0];
  const from = bus.signals.length;
  seedStation(A);
  t.teardown(() => A.killAll());
  const started = await waitFor('SessionStarted', async () => bus.heard('SessionStarted', from)[0], 60_000);
  const [id, station, pool, vm] = started.body as [string, string, string, string];
  t.same([station, pool, vm], [A.address, POOL, before?.name], 'SessionStarted(id, station, pool, vm)');
  await supervisor.waitForLine(new RegExp(`event=session-connected vm=${vm}`), 30_000);

  const sessions = await waitFor('the session object', async () => {
    const list = await ctlJson<SessionJson[]>('sessions', '--live');
    return list.length === 1 && list[0]?.connectedAt !== undefined ? list : undefined;
  }, 20_000);
  t.match(sessions[0], { id, station: A.address, address: A.address, pool: POOL, vm, protocol: 'v0' }, 'tabulactl --json sessions --live');
  t.ok((sessions[0]?.lastActivity ?? 0) >= (sessions[0]?.startedAt ?? Infinity), 'last activity is not before the start');
  const human = await tabulactl('sessions', '--live');
  t.match(human.stdout, new RegExp(`^SESSION\\s+STATION\\s+POOL\\s+VM\\s+FOR\\s+IDLE\\s+CONNECTED\\n${id.replace(/[-_]/g, '.')}\\s+${A.address.replace(/\./g, '\\.')}\\s+${POOL}\\s+${vm}\\s+\\S+\\s+\\S+\\s+yes\\n$`), 'the human table');
  const rootProps = await bus.props(ROOT, IFACE);
  const sessionPath = (rootProps['Sessions'] as string[])[0] as string;
  t.match(sessionPath, /^\/org\/tabula\/Supervisor1\/session\//);
  const props = await bus.props(sessionPath, 'org.tabula.Supervisor1.Session');
  t.match(props, { Id: id, Station: A.address, StationName: '', RemoteAddress: A.address, Pool: POOL, Vm: vm, Protocol: 'v0' }, 'the Session object');
  t.ok((props['ConnectedAt'] as bigint) > 0n, 'ConnectedAt is set');

  const documented = (await documentedMembers()).filter((m) => m.startsWith('org.tabula.Supervisor1.Session '));
  t.same(contractMembers(await introspect(sessionPath)), documented, 'the Session interface is the documented one');

  const end = await tabulactl('end-session', id);
  t.equal(end.code, 0, `tabulactl end-session: ${end.stderr}`);
  const ended = await waitFor('SessionEnded', async () => bus.heard('SessionEnded', from)[0], 60_000);
  const [endedId, endedStation, endedPool, reason, duration] = ended.body as [string, string, string, string, bigint];
  t.same([endedId, endedStation, endedPool, reason], [id, A.address, POOL, 'admin'], 'SessionEnded(id, station, pool, reason)');
  t.ok(duration > 0n, `with the session's duration (${duration} ms)`);
  await A.killAll();
  const after = await waitForClean(POOL, 1);
  const fresh = after.pools.find((p) => p.name === POOL)?.vms[0];
  t.not(fresh?.uuid, before?.uuid, 'a fresh clone took the used VM\'s place');
  t.same(await ctlJson<SessionJson[]>('sessions', '--live'), [], 'no session under way');
  const log = await ctlJson<Array<{ session: string; reason: string }>>('sessions');
  t.ok(log.some((e) => e.session === id && e.reason === 'admin'), 'the log says the admin ended it');
  const again = await tabulactl('end-session', id);
  t.equal(again.code, 4, 'ending it again: exit 4 (no such object)');
  t.match(again.stderr, `no session "${id}" is under way`);
});

t.test('drain: a station is refused and nothing is refilled; undrain refills', async (t) => {
  t.equal((await tabulactl('drain', POOL)).code, 0, 'tabulactl drain');
  const pools = await ctlJson<PoolJson[]>('pools');
  t.match(pools.find((p) => p.name === POOL), { drained: true, size: 1 }, 'tabulactl --json pools says drained');
  t.match((await tabulactl('status')).stdout, new RegExp(`${POOL}\\s+1\\s+1\\s+0\\s+0\\s+0\\s+0\\s+DRAINED`), 'tabulactl status says DRAINED');
  t.equal((await bus.props(POOL_PATH, POOL_IFACE))['Drained'], true, 'the Drained property');

  const refused = await B.exec(['bash', '-c', `sleep 3 | nc -w 4 ${lan.address} 5905`], 20_000);
  t.equal(refused.stdout.trim(), 'ERR 503 pool-drained', 'a station asking is told ERR 503 pool-drained');
  t.match(supervisor.log(), /event=station-not-served .*code=pool-drained/);

  const vm = (await status()).pools.find((p) => p.name === POOL)?.vms[0]?.name as string;
  const mark = supervisor.mark();
  t.equal((await tabulactl('recycle', vm)).code, 0, 'its clean VM recycled');
  await supervisor.waitForLine(new RegExp(`event=vm-undefined .*vm=${vm}`), 60_000, mark);
  await new Promise((r) => setTimeout(r, 6_000));
  t.notMatch(supervisor.lines.slice(mark).join('\n'), /event=vm-defined/, 'no clone is defined while drained');
  t.same((await status()).pools.find((p) => p.name === POOL)?.vms, [], 'the pool stays empty');

  t.equal((await tabulactl('undrain', POOL)).code, 0, 'tabulactl undrain');
  await waitForClean(POOL, 1);
  t.pass('undrained, the pool is refilled');
  t.equal((await bus.props(POOL_PATH, POOL_IFACE))['Drained'], false);
});

t.test('resize 1 → 2: a second VM reaches clean; out of range is refused; back to 1', async (t) => {
  const big = await tabulactl('resize', POOL, '65');
  t.equal(big.code, 2, 'size 65: exit 2');
  t.match(big.stderr, /size 65 is out of range: a pool keeps 0 to 64 VMs/);
  const r = await tabulactl('--json', 'resize', POOL, '2');
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { pool: POOL, size: 2 });
  await waitForClean(POOL, 2);
  t.pass('two clean VMs');
  t.equal((await bus.props(POOL_PATH, POOL_IFACE))['Size'], 2, 'Size says 2');
  const vms = await ctlJson<Array<{ name: string; state: string }>>('vms', POOL);
  t.same(vms.map((v) => [v.name, v.state]), [[`${PREFIX}-0`, 'clean'], [`${PREFIX}-1`, 'clean']], 'tabulactl --json vms POOL');
  t.match(await readFile(join(root.dir, 'state/pools.json'), 'utf8'), /"size": 2/, 'kept in the state directory');
  t.equal((await tabulactl('resize', POOL, '1')).code, 0);
  await waitForClean(POOL, 1);
  t.pass('back to one');
});

t.test('ReloadConfig with a broken file is refused naming file, line and key; the running config stays', async (t) => {
  const lines = configText.split('\n');
  const sizeLine = lines.findIndex((l, i) => l === 'size = 1' && lines.slice(0, i).some((x) => x === `name = "${POOL}"`)) + 1;
  t.ok(sizeLine > 0, 'the pool\'s size line was found');
  await writeFile(configPath, lines.map((l, i) => (i + 1 === sizeLine ? 'size = 1000' : l)).join('\n') + '\n');
  const r = await tabulactl('reload');
  t.equal(r.code, 1, 'exit 1: the supervisor refused');
  t.match(r.stderr, `${configPath}: line ${sizeLine}: pool[0].size: Number must be less than or equal to 64`);
  const raw = await bus.call(ROOT, IFACE, 'ReloadConfig');
  t.equal(raw.error, `${ERROR}.ConfigInvalid`, 'the D-Bus error name');
  t.match(supervisor.log(), /event=config-reload-refused code=config-invalid/);
  t.equal((await bus.props(POOL_PATH, POOL_IFACE))['Size'], 1, 'the pool keeps its size');
  await writeFile(configPath, configText + '\n');
  t.equal((await tabulactl('reload')).code, 0, 'the fixed file is taken');
  await waitForClean(POOL, 1);
});

t.test('FactoryReset runs the configured command with keep-images or erase-all; a wrong confirm runs nothing', async (t) => {
  const args = () => readFile(join(root.dir, 'reset-args'), 'utf8').catch(() => '');
  const notYes = await tabulactl('factory-reset');
  t.equal(notYes.code, 2, 'without --yes: exit 2');
  t.match(notYes.stderr, /Pass --yes to reset/);
  const wrong = await bus.call(ROOT, IFACE, 'FactoryReset', 'bs', [true, 'yes']);
  t.equal(wrong.error, `${ERROR}.InvalidArgument`);
  t.match(wrong.text, /the confirmation must be the words "factory-reset"/);
  t.equal(await args(), '', 'nothing ran');
  t.equal((await tabulactl('factory-reset', '--keep-images', '--yes')).code, 0);
  t.equal((await tabulactl('--json', 'factory-reset', '--yes')).code, 0);
  t.equal(await args(), '--from-test keep-images\n--from-test erase-all\n', 'the command got its argument each time');
  await writeFile(join(root.dir, 'reset-exit'), '3\n');
  const failed = await tabulactl('factory-reset', '--yes');
  t.equal(failed.code, 1, 'a failing command: exit 1');
  t.match(failed.stderr, /factory reset: .*factory-reset --from-test erase-all exited with code 3/);
  const raw = await bus.call(ROOT, IFACE, 'FactoryReset', 'bs', [false, 'factory-reset']);
  t.equal(raw.error, `${ERROR}.CommandFailed`);
});

t.test('every refused call gets an error name with a code and a message naming what is wrong', async (t) => {
  const cases: Array<[string, string, string, string, unknown[], string, RegExp]> = [
    [`${ROOT}/pool/nope`, POOL_IFACE, 'Drain', '', [], 'NotFound', /no pool named "nope"/],
    [`${ROOT}/pool/nope`, POOL_IFACE, 'Resize', 'u', [1], 'NotFound', /no pool named "nope"/],
    [POOL_PATH, POOL_IFACE, 'Resize', 'u', [65], 'InvalidArgument', /size 65 is out of range/],
    [ROOT, IFACE, 'EndSession', 's', ['nope'], 'NotFound', /no session "nope" is under way/],
    [`${ROOT}/session/nope`, 'org.tabula.Supervisor1.Session', 'End', '', [], 'NotFound', /no session "nope" is under way/],
    [ROOT, IFACE, 'RecycleVm', 's', ['tabula-nope-0'], 'NotFound', /no Tabula VM named "tabula-nope-0"/],
    [`${ROOT}/vm/tabula_2dnope_2d0`, 'org.tabula.Supervisor1.Vm', 'Recycle', '', [], 'NotFound', /no Tabula VM named "tabula-nope-0"/],
    [ROOT, IFACE, 'FactoryReset', 'bs', [false, 'Factory-Reset'], 'InvalidArgument', /must be the words "factory-reset"/],
    [ROOT, IFACE, 'AddToWhitelist', 's', ['example.org'], 'NotFound', /no VM network is configured/],
  ];
  for (const [path, iface, member, sig, body, code, message] of cases) {
    const r = await bus.call(path, iface, member, sig, body);
    t.equal(r.error, `${ERROR}.${code}`, `${member} on ${path}: ${code}`);
    t.match(r.text, message, 'with a message naming it');
  }
  t.equal((await tabulactl('drain', 'nope')).code, 4, 'tabulactl drain of an unknown pool: exit 4');
  t.equal((await tabulactl('resize', POOL, 'two')).code, 2, 'a size that is no number: exit 2, before the bus is asked');
  const logs = await tabulactl('logs', '-n', '5');
  t.equal(logs.code, 1, 'logs on a host without journald: exit 1');
  t.match(logs.stderr, /this host has no systemd journal/);
});

t.test('who may: group "tabula" reads, others do not; admin calls need root, or polkit once the bus lets them through', async (t) => {
  const status = await tabulactlAs(READER, '--json', 'status');
  t.equal(status.code, 0, `${READER} (group tabula) reads the status: ${status.stderr}`);
  t.ok(JSON.parse(status.stdout).pools.some((p: { name: string }) => p.name === POOL), 'and gets the pools as JSON');
  for (const args of [['pools'], ['vms'], ['sessions', '--live'], ['sessions', '--json']]) {
    t.equal((await tabulactlAs(READER, ...args)).code, 0, `${READER}: tabulactl ${args.join(' ')}`);
  }
  const drain = await tabulactlAs(READER, 'drain', POOL);
  t.equal(drain.code, 5, `${READER} may not drain: exit 5`);
  t.match(drain.stderr, /permission denied: reading needs membership of group "tabula", changing anything needs root/);
  const other = await tabulactlAs(OTHER, 'status');
  t.equal(other.code, 5, `${OTHER} (not in group tabula) may not even read`);

  // A site that lets its admins through the bus policy: the supervisor asks polkit.
  await allowOnBus(READER);
  const denied = await tabulactlAs(READER, 'drain', POOL);
  t.equal(denied.code, 5, 'through the bus, without a polkit grant: exit 5');
  t.match(denied.stderr, /permission denied: uid \d+ is not authorized for org\.tabula\.supervisor1\.manage by polkit/);
  const raw = await tabulactlAs(READER, 'factory-reset', '--yes');
  t.equal(raw.code, 5, 'nor a factory reset');
  t.equal((await bus.props(POOL_PATH, POOL_IFACE))['Drained'], false, 'nothing was drained');

  await grantPolkit(READER, 'org.tabula.supervisor1.manage');
  const granted = await waitFor('polkit to take up the rule', async () => {
    const r = await tabulactlAs(READER, 'drain', POOL);
    return r.code === 0 ? r : undefined;
  }, 20_000, 1_000);
  t.equal(granted.code, 0, 'granted by a polkit rule: the drain goes through');
  t.equal((await bus.props(POOL_PATH, POOL_IFACE))['Drained'], true);
  t.equal((await tabulactlAs(READER, 'undrain', POOL)).code, 0);
  t.equal((await tabulactlAs(READER, 'factory-reset', '--yes')).code, 5, 'the manage grant is not a factory-reset grant');
  await removeGrants();
  t.equal((await tabulactlAs(READER, 'drain', POOL)).code, 5, 'grants removed: refused again');
});

t.test('timeouts: set with tabulactl (one PropertiesChanged), a bad value refused naming key and bounds, kept across a restart, until the file changes that key', async (t) => {
  const props = () => bus.props(POOL_PATH, POOL_IFACE);
  t.match(await props(), { IdleTimeout: 300, MaxSession: 14_400, SessionWarning: 60, BootTimeout: 90 }, "the file's (and defaults)");
  const from = bus.signals.length;
  const set = await tabulactl('--json', 'timeouts', POOL, '--idle', '600', '--warning', '30');
  t.equal(set.code, 0, set.stderr);
  t.same(JSON.parse(set.stdout), { pool: POOL, timeouts: { idle_timeout: 600, session_warning: 30 } });
  await waitFor('IdleTimeout 600', async () => ((await props())['IdleTimeout'] === 600 ? true : undefined), 10_000);
  await new Promise((r) => setTimeout(r, 4_000));
  const told = bus.heard('PropertiesChanged', from).filter((s) => s.path === POOL_PATH && JSON.stringify(s.body).includes('Timeout'));
  t.equal(told.length, 1, 'one PropertiesChanged, then none while nothing changes');
  t.same(Object.keys((told[0]?.body[1] ?? {}) as object).sort(), ['IdleTimeout', 'SessionWarning'], 'with what changed only');
  const pools = await ctlJson<Array<PoolJson & { timeouts: Record<string, number> }>>('pools');
  t.same(pools.find((p) => p.name === POOL)?.timeouts, { idle_timeout: 600, max_session: 14_400, session_warning: 30, boot_timeout: 90 }, 'tabulactl --json pools');
  t.match((await tabulactl('pools')).stdout, new RegExp(`\\n${POOL}\\s+600s\\s+14400s\\s+30s\\s+90s\\n`), 'tabulactl pools');

  const bad = await bus.call(POOL_PATH, POOL_IFACE, 'SetTimeouts', 'a{sv}', [{ IdleTimeout: new dbus.Variant('u', 99_999) }]);
  t.equal(bad.error, `${ERROR}.InvalidArgument`, 'SetTimeouts out of bounds: InvalidArgument');
  t.equal(bad.text, 'idle_timeout must be from 0 to 86400 seconds (0: never), not 99999');
  const unknown = await bus.call(POOL_PATH, POOL_IFACE, 'SetTimeouts', 'a{sv}', [{ Idle: new dbus.Variant('u', 60) }]);
  t.match(unknown, { error: `${ERROR}.InvalidArgument`, text: /unknown key "Idle"/ });
  const boot = await tabulactl('timeouts', POOL, '--boot', '0');
  t.equal(boot.code, 2, 'tabulactl: exit 2');
  t.match(boot.stderr, 'boot_timeout must be more than 0 and at most 86400 seconds, not 0');
  t.equal((await props())['IdleTimeout'], 600, 'nothing changed');

  await supervisor.stop();
  supervisor = new SupervisorProcess(configPath);
  await supervisor.waitForLine(/event=supervisor-ready/);
  await waitForClean(POOL, 1);
  t.match(await props(), { IdleTimeout: 600, SessionWarning: 30 }, 'after a restart, still in force');
  t.match(await readFile(join(root.dir, 'state/pools.json'), 'utf8'), /"idle_timeout"/, 'kept in STATE_DIR/pools.json');

  await writeFile(configPath, configText.replace(`name = "${POOL}"\n`, `name = "${POOL}"\nidle_timeout = 900\n`) + '\n');
  const mark = supervisor.mark();
  t.equal((await tabulactl('reload')).code, 0, 'the file now says idle_timeout = 900');
  await supervisor.waitForLine(new RegExp(`event=pool-override-dropped pool=${POOL} what=idle_timeout`), 10_000, mark);
  await waitFor('IdleTimeout 900', async () => ((await props())['IdleTimeout'] === 900 ? true : undefined), 10_000);
  t.equal((await props())['SessionWarning'], 30, "the file wins for idle_timeout only; staff's warning stays");

  await writeFile(configPath, configText + '\n');
  t.equal((await tabulactl('reload')).code, 0);
  t.equal((await tabulactl('timeouts', POOL, '--warning', '60')).code, 0, "the file's warning again");
  t.notMatch(await readFile(join(root.dir, 'state/pools.json'), 'utf8'), /timeouts/, 'nothing left to remember');
  await waitFor('IdleTimeout 300', async () => ((await props())['IdleTimeout'] === 300 ? true : undefined), 10_000);
});
