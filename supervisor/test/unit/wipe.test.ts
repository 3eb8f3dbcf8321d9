import t from 'tap';
import { domainSpec } from '../../src/app/executor.js';
import { Reconciler, type SessionEnded } from '../../src/app/reconciler.js';
import { parseConfig } from '../../src/config/config.js';
import type { VmRecord } from '../../src/domain/vm.js';
import { renderDomainXml } from '../../src/render/domain-xml.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeDisks } from '../fakes/fake-disks.js';
import { FakeLibvirt } from '../fakes/fake-libvirt.js';
import { MemorySessionLog } from '../fakes/memory-session-log.js';
import { FakeConntrack, FakeFirewall } from '../fakes/fake-network.js';
import { FakeNotifier } from '../fakes/fake-notifier.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const GOLDEN = '/srv/golden/desk.qcow2';
const STORAGE = '/var/lib/tabula/pools/desk';
const VM0 = 'tabula-desk-0';
const VM1 = 'tabula-desk-1';
const VM2 = 'tabula-desk-2';
const OLD = 'tabula-old-0';
const STATION = '169.254.24.10';
const CONFIG = `[supervisor]
hypervisor = "qemu"
max_parallel_boots = 3
[stations]
interface = "lan0"
[[pool]]
name = "desk"
golden_image = "${GOLDEN}"
size = 3
`;

function setup() {
  const config = parseConfig(CONFIG, 'unit.toml');
  const libvirt = new FakeLibvirt();
  const disks = new FakeDisks();
  disks.putImage(GOLDEN);
  const clock = new FakeClock();
  const notifier = new FakeNotifier();
  const logger = new MemoryLogger();
  const firewall = new FakeFirewall();
  const conntrack = new FakeConntrack();
  const sessionLog = new MemorySessionLog();
  let secrets = 0;
  const deps = { libvirt, disks, clock, notifier, logger, firewall, conntrack, sessionLog, newSecret: () => `secret-${++secrets}` };
  const reconciler = new Reconciler(config, deps);
  const ended: SessionEnded[] = [];
  reconciler.onSessionEnded((e) => ended.push(e));
  return { config, deps, libvirt, disks, clock, notifier, logger, firewall, sessionLog, reconciler, ended };
}

type Harness = ReturnType<typeof setup>;

async function fill(h: Harness, reconciler = h.reconciler): Promise<void> {
  await reconciler.settle();
  for (const name of h.libvirt.names()) {
    const d = h.libvirt.domain(name);
    if (d?.active && d.record?.state === 'booting') h.libvirt.guestUp(name);
  }
  await reconciler.settle();
}

function owned(h: Harness): string[] {
  return h.libvirt.names().filter((n) => h.libvirt.domain(n)?.record !== undefined);
}

/**
 * The pool of 3 in every state a wipe meets: VM0 clean, VM1 handed to a
 * station (its forward open), VM2 dirty and still running; a VM of a pool no
 * longer configured; a foreign domain; and in the storage directory an orphan,
 * a half-written clone, a console log and a file Tabula did not make.
 */
async function populated(): Promise<Harness> {
  const h = setup();
  await fill(h);
  const now = h.clock.now();
  const clean = h.libvirt.domain(VM1)?.record as VmRecord;
  await h.libvirt.setVmRecord(VM1, { ...clean, state: 'in-use', stateSince: now, session: { id: 's-1', station: STATION, protocol: 'v1', handedAt: now } });
  await h.reconciler.syncFirewall();
  await h.reconciler.recycle(VM2);

  const old = parseConfig(`[[pool]]\nname = "old"\ngolden_image = "${GOLDEN}"\nsize = 1\nspice_port_base = 6000\n`, 'old.toml');
  const record: VmRecord = { pool: 'old', slot: 0, state: 'clean', createdAt: now, stateSince: now };
  await h.libvirt.defineDomain(renderDomainXml(domainSpec(old, old.pools[0]!, OLD, record, 'pw')));
  await h.libvirt.startDomain(OLD);
  h.libvirt.addForeign('mail-server');

  for (const f of ['tabula-desk-7.qcow2', `${VM0}.qcow2.tmp`, `${VM0}.console.log`, 'notes.txt']) h.disks.putFile(`${STORAGE}/${f}`);
  return h;
}

t.test('a wipe removes every Tabula VM and file, ends the session under way and tells its station', async (t) => {
  const h = await populated();
  t.same(h.firewall.forwards().map((f) => f.station), [STATION], 'the station had its forward');

  const report = await h.reconciler.wipe('admin');

  t.same(report, { domains: 4, files: 6, sessions: 1 });
  t.same(h.libvirt.names(), ['mail-server'], 'every Tabula domain is gone, of any pool; the foreign one is left');
  t.equal(h.libvirt.domain('mail-server')?.active, true);
  t.same(h.libvirt.calls.filter((c) => c.name === 'mail-server'), [], 'the foreign domain was not even touched');
  t.same(h.disks.paths(), [GOLDEN, `${STORAGE}/notes.txt`], 'only the file Tabula did not make is left');
  t.same(h.ended, [{ session: 's-1', vm: VM1, cause: 'wipe' }], 'the station was told why');
  t.match(h.sessionLog.entries, [{ session: 's-1', vm: VM1, pool: 'desk', station: { address: STATION }, reason: 'wipe', endedAt: h.clock.now() }]);
  t.equal(h.sessionLog.entries.length, 1);
  t.same(h.firewall.forwards(), [], 'the forward is closed');
  t.match(h.logger.find('wipe-started'), [{ level: 'notice', fields: { reason: 'admin', domains: 4 } }]);
  t.match(h.logger.find('wipe-finished'), [{ level: 'notice', fields: { reason: 'admin', domains: 4, files: 6, sessions: 1 } }]);
  t.same(h.logger.find('wipe-step-failed'), []);
});

t.test('a running VM is marked dirty before it is destroyed, and destroyed before it is undefined', async (t) => {
  const h = await populated();
  const mark = h.libvirt.calls.length;
  await h.reconciler.wipe('admin');
  const of = (name: string) => h.libvirt.calls.slice(mark).filter((c) => c.name === name && c.method !== 'getDomain').map((c) => c.method);
  t.same(of(VM0), ['setVmRecord', 'destroyDomain', 'undefineDomain']);
  t.same(of(VM1), ['setVmRecord', 'destroyDomain', 'undefineDomain']);
  t.same(of(VM2), ['destroyDomain', 'undefineDomain'], 'a dirty VM already says so');
});

t.test('after a wipe the next rounds rebuild the pool with new domains', async (t) => {
  const h = await populated();
  const before = [VM0, VM1, VM2].map((n) => h.libvirt.domain(n)?.uuid);
  await h.reconciler.wipe('admin');
  await fill(h);
  t.same(owned(h), [VM0, VM1, VM2]);
  t.ok([VM0, VM1, VM2].every((n) => h.libvirt.domain(n)?.record?.state === 'clean' && h.libvirt.domain(n)?.active));
  const after = [VM0, VM1, VM2].map((n) => h.libvirt.domain(n)?.uuid);
  t.ok(after.every((u) => !before.includes(u)), 'every VM is a new domain');
  t.same(h.disks.paths(), [GOLDEN, `${STORAGE}/notes.txt`, `${STORAGE}/${VM0}.qcow2`, `${STORAGE}/${VM1}.qcow2`, `${STORAGE}/${VM2}.qcow2`]);
  t.equal(h.reconciler.status().line, 'desk: 3/3 clean');
});

t.test('a wipe during run wakes the loop, which rebuilds the pool without waiting for the heartbeat', async (t) => {
  const h = await populated();
  const stop = new AbortController();
  const done = h.reconciler.run(stop.signal);
  await h.clock.sleeping();
  await h.reconciler.wipe('admin');
  await h.clock.sleeping();
  t.same(owned(h), [VM0, VM1, VM2], 'defined again at once');
  t.ok([VM0, VM1, VM2].every((n) => h.libvirt.domain(n)?.record?.state === 'booting'));
  stop.abort();
  await done;
});

t.test('a second wipe while one runs is refused; once it is over another may run', async (t) => {
  const h = await populated();
  const first = h.reconciler.wipe('admin');
  await t.rejects(h.reconciler.wipe('admin'), { name: 'TabulaError', code: 'conflict', message: 'a wipe is already under way' });
  t.same(await first, { domains: 4, files: 6, sessions: 1 }, 'the first one was not disturbed');
  t.equal(h.logger.find('wipe-started').length, 1);
  t.same(await h.reconciler.wipe('admin'), { domains: 0, files: 0, sessions: 0 }, 'nothing left to wipe');
});

t.test('a VM that cannot be undefined: the others are removed, then the wipe fails naming it', async (t) => {
  const h = await populated();
  h.libvirt.failNext('undefineDomain');
  const err = await h.reconciler.wipe('admin').then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  );
  t.equal(err?.code, 'libvirt-failed');
  const left = owned(h);
  t.equal(left.length, 1, 'one Tabula domain is left');
  const stuck = left[0] as string;
  t.match(err?.message, new RegExp(`could not remove: ${stuck} \\(injected undefineDomain failure\\)`));
  t.equal(h.libvirt.domain(stuck)?.active, false, 'destroyed all the same');
  t.equal(h.libvirt.domain(stuck)?.record?.state, 'dirty', 'and dirty, so the planner finishes it');
  const expectFiles = stuck.startsWith('tabula-desk-') ? [`${STORAGE}/${stuck}.qcow2`] : [];
  t.same(h.disks.paths(), [GOLDEN, ...expectFiles, `${STORAGE}/notes.txt`].sort(), 'its disk is kept while its domain is there; the rest is gone');
  t.match(h.logger.find('wipe-step-failed'), [{ level: 'err', fields: { vm: stuck, code: 'libvirt-failed' } }]);
  t.match(h.logger.find('wipe-incomplete'), [{ level: 'err', fields: { domains: 3, failed: 1 } }]);
  t.same(h.logger.find('wipe-finished'), []);

  await fill(h);
  await fill(h);
  t.same(owned(h), [VM0, VM1, VM2], 'the leftover is removed and the pool rebuilt');
  t.ok([VM0, VM1, VM2].every((n) => h.libvirt.domain(n)?.record?.state === 'clean'));
});

t.test('a wipe starts pool health afresh and looks at the golden image again', async (t) => {
  const h = setup();
  h.libvirt.failNext('startDomain');
  await h.reconciler.settle();
  await h.reconciler.settle();
  const r = await h.reconciler.settle();
  t.equal(r.wakeAt, h.clock.now() + 2_000, 'the pool backs off after a failed clone');
  t.equal(owned(h).length, 2, 'its slot stays empty meanwhile');

  await h.reconciler.wipe('admin');
  await h.reconciler.settle();
  t.equal(owned(h).length, 3, 'no backoff after the wipe: every slot is defined at once');

  await h.reconciler.wipe('admin');
  h.disks.putImage(GOLDEN, { format: 'qcow2', virtualSize: 2 ** 30, actualSize: 1, backingFile: '/srv/base.qcow2' });
  await h.reconciler.settle();
  t.same(owned(h), [], 'the golden image was inspected again and refused');
  t.match(h.reconciler.status().pools[0]?.healthReason, /has a backing file/);
});

t.test('wipe at start-up: a new supervisor removes what the last one left, then builds the pool afresh', async (t) => {
  const h = await populated();
  const before = [VM0, VM1, VM2].map((n) => h.libvirt.domain(n)?.uuid);
  const restarted = new Reconciler(h.config, h.deps);
  const heard: SessionEnded[] = [];
  restarted.onSessionEnded((e) => heard.push(e));

  t.same(await restarted.wipe('start'), { domains: 4, files: 6, sessions: 1 });
  t.same(heard, [{ session: 's-1', vm: VM1, cause: 'wipe' }]);
  t.match(h.logger.find('wipe-finished'), [{ fields: { reason: 'start' } }]);
  await fill(h, restarted);
  t.same(owned(h), [VM0, VM1, VM2]);
  t.ok([VM0, VM1, VM2].every((n) => !before.includes(h.libvirt.domain(n)?.uuid)), 'nothing of before was adopted');
  t.equal(restarted.status().line, 'desk: 3/3 clean');
});
