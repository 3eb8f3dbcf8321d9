import t from 'tap';
import { Reconciler, type SupervisorStatus } from '../../src/app/reconciler.js';
import { parseConfig } from '../../src/config/config.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeDisks } from '../fakes/fake-disks.js';
import { FakeLibvirt } from '../fakes/fake-libvirt.js';
import { FakeNotifier } from '../fakes/fake-notifier.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const GOLDEN = '/srv/golden/desk.qcow2';
const STORAGE = '/var/lib/tabula/pools/desk';
const BOOT_TIMEOUT_MS = 60_000;
const HEARTBEAT_MS = 5_000;
const VM0 = 'tabula-desk-0';
const VM1 = 'tabula-desk-1';

function setup(opts: { maxParallelBoots?: number; golden?: boolean } = {}) {
  const config = parseConfig(
    `[supervisor]
boot_timeout = ${BOOT_TIMEOUT_MS / 1000}
heartbeat = ${HEARTBEAT_MS / 1000}
max_parallel_boots = ${opts.maxParallelBoots ?? 2}

[[pool]]
name = "desk"
golden_image = "${GOLDEN}"
size = 2
`,
    'unit.toml',
  );
  const libvirt = new FakeLibvirt();
  const disks = new FakeDisks();
  if (opts.golden ?? true) disks.putImage(GOLDEN);
  const clock = new FakeClock();
  const notifier = new FakeNotifier();
  const logger = new MemoryLogger();
  let secrets = 0;
  const reconciler = new Reconciler(config, { libvirt, disks, clock, notifier, logger, newSecret: () => `secret-${++secrets}` });
  return { config, libvirt, disks, clock, notifier, logger, reconciler };
}

type Harness = ReturnType<typeof setup>;

/** The guest agent of every VM that is booting comes up. */
function guestsUp(h: Harness): void {
  for (const name of h.libvirt.names()) {
    const d = h.libvirt.domain(name);
    if (d?.active && d.record?.state === 'booting') h.libvirt.guestUp(name);
  }
}

async function fill(h: Harness): Promise<void> {
  await h.reconciler.settle();
  guestsUp(h);
  await h.reconciler.settle();
}

function pool(s: SupervisorStatus) {
  const p = s.pools[0];
  if (p === undefined) throw new Error('no pool in status');
  return p;
}

function states(h: Harness): string[] {
  return h.libvirt.names().map((n) => {
    const d = h.libvirt.domain(n);
    return `${n} ${d?.record?.state ?? '-'} ${d?.active ? 'running' : 'stopped'}`;
  });
}

t.test('settle, guests up, settle: the pool holds two clean VMs', async (t) => {
  const h = setup();
  await h.reconciler.settle();
  t.same(states(h), [`${VM0} booting running`, `${VM1} booting running`], 'defined, cloned and started in one settle');
  t.equal(h.reconciler.status().state, 'ready');

  guestsUp(h);
  await h.reconciler.settle();
  t.same(states(h), [`${VM0} clean running`, `${VM1} clean running`]);
  const p = pool(h.reconciler.status());
  t.same(p.counts, { cloning: 0, booting: 0, clean: 2, 'in-use': 0, dirty: 0 });
  t.equal(p.healthy, true);
  t.same(p.vms.map((v) => [v.name, v.spicePort]), [
    [VM0, 5920],
    [VM1, 5921],
  ]);
  t.equal(h.reconciler.status().line, 'desk: 2/2 clean');
});

t.test('each clone is a fresh overlay on the golden image, with its own spice password', async (t) => {
  const h = setup();
  await fill(h);
  t.same(h.disks.paths(), [GOLDEN, `${STORAGE}/${VM0}.qcow2`, `${STORAGE}/${VM1}.qcow2`]);
  t.same(h.disks.backingOf(`${STORAGE}/${VM0}.qcow2`), { path: GOLDEN, format: 'qcow2' });
  const passwords = [VM0, VM1].map((n) => /passwd='([^']*)'/.exec(h.libvirt.domain(n)?.xml ?? '')?.[1]);
  t.same(passwords.sort(), ['secret-1', 'secret-2']);
});

t.test('status() and onStatus agree, and a disposed listener hears nothing more', async (t) => {
  const h = setup();
  const heard: SupervisorStatus[] = [];
  const sub = h.reconciler.onStatus((s) => heard.push(s));
  t.equal(h.reconciler.status().state, 'starting');
  await fill(h);
  t.ok(heard.length >= 2);
  t.same(heard.at(-1), h.reconciler.status());
  t.notOk(heard.some((s, i) => i > 0 && JSON.stringify(s) === JSON.stringify(heard[i - 1])), 'listeners hear changes only');

  sub.dispose();
  const count = heard.length;
  h.libvirt.crash(VM0);
  await h.reconciler.settle();
  t.not(pool(h.reconciler.status()).vms[0]?.state, 'clean', 'the status did change');
  t.equal(heard.length, count);
});

t.test('a throwing status listener does not stop the pool from being kept', async (t) => {
  const h = setup();
  h.reconciler.onStatus(() => {
    throw new Error('api broke');
  });
  await fill(h);
  t.equal(pool(h.reconciler.status()).counts.clean, 2);
  t.ok(h.logger.find('status-listener-failed').length > 0);
});

t.test('the notifier gets each new status line, and a watchdog ping every round', async (t) => {
  const h = setup();
  await fill(h);
  t.same(h.notifier.statuses, ['desk: 0/2 clean', 'desk: 0/2 clean, 2 cloning', 'desk: 0/2 clean, 2 booting', 'desk: 2/2 clean']);
  t.ok(h.notifier.watchdogCount >= 4);
  t.equal(h.notifier.readyCount, 0, 'READY is for run() to send');
});

t.test('a clean VM that crashed is replaced by a new clone', async (t) => {
  const h = setup();
  await fill(h);
  const before = h.libvirt.domain(VM0)?.uuid;
  const other = h.libvirt.domain(VM1)?.uuid;
  h.libvirt.crash(VM0);
  await h.reconciler.settle();
  t.equal(h.libvirt.domain(VM0)?.record?.state, 'booting');
  guestsUp(h);
  await h.reconciler.settle();
  t.same(states(h), [`${VM0} clean running`, `${VM1} clean running`]);
  t.not(h.libvirt.domain(VM0)?.uuid, before, 'a new domain, not the old one restarted');
  t.equal(h.libvirt.domain(VM1)?.uuid, other, 'the other VM was not touched');
  t.match(h.logger.find('vm-undefined'), [{ fields: { vm: VM0, reason: 'died' } }]);
  t.equal(pool(h.reconciler.status()).healthy, true, 'a crash of a clean VM is not a failed clone');
});

t.test('recycle marks a VM dirty and the next settles replace it', async (t) => {
  const h = setup();
  await fill(h);
  const before = h.libvirt.domain(VM1)?.uuid;
  await h.reconciler.recycle(VM1);
  t.equal(h.libvirt.domain(VM1)?.record?.state, 'dirty');
  t.equal(h.libvirt.domain(VM1)?.active, true, 'recycle only marks; the reconciler destroys');
  await h.reconciler.settle();
  guestsUp(h);
  await h.reconciler.settle();
  t.same(states(h), [`${VM0} clean running`, `${VM1} clean running`]);
  t.not(h.libvirt.domain(VM1)?.uuid, before);
  t.match(h.logger.find('vm-marked-dirty'), [{ level: 'notice', fields: { vm: VM1, was: 'clean' } }]);
  t.match(h.logger.find('vm-destroyed'), [{ fields: { vm: VM1, reason: 'dirty' } }]);
});

t.test('recycling a VM that is already dirty changes nothing', async (t) => {
  const h = setup();
  await fill(h);
  await h.reconciler.recycle(VM0);
  const since = h.libvirt.domain(VM0)?.record?.stateSince;
  h.clock.advance(1000);
  await h.reconciler.recycle(VM0);
  t.equal(h.libvirt.domain(VM0)?.record?.stateSince, since);
  t.equal(h.logger.find('vm-marked-dirty').length, 1);
});

t.test('recycle of an unknown or foreign name rejects with not-found', async (t) => {
  const h = setup();
  await fill(h);
  h.libvirt.addForeign('windows-build');
  await t.rejects(h.reconciler.recycle('tabula-desk-9'), { name: 'TabulaError', code: 'not-found' });
  await t.rejects(h.reconciler.recycle('windows-build'), { code: 'not-found' });
  t.equal(h.libvirt.domain('windows-build')?.record, undefined);
});

t.test('domains Tabula does not own are never touched', async (t) => {
  const h = setup();
  h.libvirt.addForeign('tabula-desk-5');
  h.libvirt.addForeign('mail-server', false);
  h.disks.putFile(`${STORAGE}/notes.txt`);
  await fill(h);
  t.ok(h.libvirt.domain('tabula-desk-5')?.active);
  t.ok(h.libvirt.domain('mail-server'));
  t.ok(h.disks.has(`${STORAGE}/notes.txt`));
  t.same(h.libvirt.calls.filter((c) => c.name === 'tabula-desk-5' || c.name === 'mail-server'), []);
});

t.test('leftovers from before a restart are adopted or cleaned up', async (t) => {
  const h = setup();
  await fill(h);
  // A new supervisor over the same libvirt and disks, as after a restart.
  const { libvirt, disks, clock, notifier, logger } = h;
  const h2 = { reconciler: new Reconciler(h.config, { libvirt, disks, clock, notifier, logger, newSecret: () => 'x' }) };
  h.disks.putFile(`${STORAGE}/tabula-desk-7.qcow2`);
  h.disks.putFile(`${STORAGE}/${VM0}.qcow2.tmp`);
  const uuids = [VM0, VM1].map((n) => h.libvirt.domain(n)?.uuid);
  await h2.reconciler.settle();
  t.same([VM0, VM1].map((n) => h.libvirt.domain(n)?.uuid), uuids, 'the clean VMs are kept');
  t.same(h.disks.paths(), [GOLDEN, `${STORAGE}/${VM0}.qcow2`, `${STORAGE}/${VM1}.qcow2`]);
  t.equal(pool(h2.reconciler.status()).counts.clean, 2);
});

t.test('a boot timeout destroys the VM, counts as a failure and backs off; 3 make the pool unhealthy; a success heals it', async (t) => {
  const h = setup({ maxParallelBoots: 1 });
  const statusOf = () => pool(h.reconciler.status());

  await h.reconciler.settle();
  t.same(states(h), [`${VM0} booting running`]);

  h.clock.advance(BOOT_TIMEOUT_MS);
  await h.reconciler.settle();
  t.match(h.logger.find('vm-destroyed'), [{ fields: { vm: VM0, reason: 'boot-timeout' } }]);
  t.same(h.libvirt.names(), [], 'destroyed, undefined, its disk deleted');
  t.same(h.disks.paths(), [GOLDEN]);
  t.equal(statusOf().healthy, true, 'one failure is not yet unhealthy');

  // First failure: 2 s of backoff before the next define.
  const r = await h.reconciler.settle();
  t.equal(r.wakeAt, h.clock.now() + 2_000);
  h.clock.advance(1_999);
  await h.reconciler.settle();
  t.same(h.libvirt.names(), [], 'no define during the backoff');
  h.clock.advance(1);
  await h.reconciler.settle();
  t.same(states(h), [`${VM0} booting running`]);

  h.clock.advance(BOOT_TIMEOUT_MS);
  await h.reconciler.settle();
  t.equal(statusOf().healthy, true, 'two failures are not yet unhealthy');
  h.clock.advance(3_999);
  await h.reconciler.settle();
  t.same(h.libvirt.names(), [], 'the backoff doubled to 4 s');
  h.clock.advance(1);
  await h.reconciler.settle();
  t.equal(h.libvirt.names().length, 1);

  h.clock.advance(BOOT_TIMEOUT_MS);
  await h.reconciler.settle();
  const sick = statusOf();
  t.equal(sick.healthy, false);
  t.match(sick.healthReason, /^3 clones in a row failed.*did not report up in time/);
  t.match(h.reconciler.status().line, /UNHEALTHY: 3 clones in a row failed/);
  t.match(h.logger.find('pool-unhealthy'), [{ level: 'err', fields: { pool: 'desk' } }]);

  h.clock.advance(8_000);
  await h.reconciler.settle();
  guestsUp(h);
  await h.reconciler.settle();
  t.equal(statusOf().healthy, true, 'a clone that came up heals the pool');
  t.equal(statusOf().healthReason, '');
  t.equal(statusOf().counts.clean, 1);
  await h.reconciler.settle();
  t.equal(h.libvirt.names().length, 2, 'and the backoff is gone: the next slot fills at once');
  t.equal(h.logger.find('pool-unhealthy').length, 1);
});

t.test('a guest that stops while booting counts as a failed clone', async (t) => {
  const h = setup({ maxParallelBoots: 1 });
  await h.reconciler.settle();
  h.libvirt.crash(VM0);
  const r = await h.reconciler.settle();
  t.match(h.logger.find('vm-undefined'), [{ fields: { vm: VM0, reason: 'died-while-booting' } }]);
  t.equal(r.wakeAt, h.clock.now() + 2_000, 'backed off');
  t.same(h.libvirt.names(), []);
});

t.test('a missing golden image: nothing is defined, the pool is unhealthy naming the image, and it fills once the image appears', async (t) => {
  const h = setup({ golden: false });
  await h.reconciler.settle();
  t.same(h.libvirt.names(), []);
  t.same(h.libvirt.calls.filter((c) => c.method === 'defineDomain'), []);
  const p = pool(h.reconciler.status());
  t.equal(p.healthy, false);
  t.match(p.healthReason, GOLDEN);
  t.equal(h.reconciler.status().state, 'ready', 'the supervisor itself is fine');
  t.match(h.logger.find('golden-image-unusable'), [{ level: 'err', fields: { pool: 'desk' } }]);

  h.disks.putImage(GOLDEN);
  h.clock.advance(4_999);
  await h.reconciler.settle();
  t.same(h.libvirt.names(), [], 'the image is looked at again only every 5 s');
  h.clock.advance(1);
  await fill(h);
  t.equal(pool(h.reconciler.status()).counts.clean, 2);
  t.equal(pool(h.reconciler.status()).healthy, true);
  t.equal(h.logger.find('golden-image-usable').length, 1);
  t.equal(h.logger.find('golden-image-unusable').length, 1, 'the problem was logged once, not on every look');
});

t.test('a golden image that cannot be cloned from is reported with the reason', async (t) => {
  const h = setup({ golden: false });
  h.disks.putImage(GOLDEN, { format: 'qcow2', virtualSize: 2 ** 30, actualSize: 1, backingFile: '/srv/base.qcow2' });
  await h.reconciler.settle();
  t.same(h.libvirt.names(), []);
  t.match(pool(h.reconciler.status()).healthReason, /golden image \/srv\/golden\/desk\.qcow2 has a backing file/);
});

t.test('a failed clone counts as a failure and makes the golden image be looked at again', async (t) => {
  const h = setup({ maxParallelBoots: 1 });
  h.disks.failNext('createOverlay');
  const r = await h.reconciler.settle();
  t.match(h.logger.find('step-failed'), [{ level: 'err', fields: { step: 'clone-disk', vm: VM0, code: 'disk-failed' } }]);
  t.equal(r.succeeded, 0);
  h.disks.deleteFile(GOLDEN);
  await h.reconciler.settle();
  t.match(pool(h.reconciler.status()).healthReason, `golden image ${GOLDEN} does not exist`);
  t.equal(h.libvirt.domain(VM0)?.record?.state, 'cloning', 'the half-made VM waits for the image');
});

t.test('libvirt unreachable: degraded, no crash, VMs untouched; then back to ready', async (t) => {
  const h = setup();
  await fill(h);
  const uuids = [VM0, VM1].map((n) => h.libvirt.domain(n)?.uuid);

  h.libvirt.unreachable = true;
  await h.reconciler.settle();
  await h.reconciler.settle();
  const s = h.reconciler.status();
  t.equal(s.state, 'degraded');
  t.match(s.reason, /libvirt unreachable: .*Connection reset/);
  t.match(h.notifier.statuses.at(-1), /^degraded: libvirt unreachable/);
  t.equal(pool(s).counts.clean, 2, 'the last known pools are kept');
  t.equal(h.logger.find('libvirt-unreachable').length, 1, 'logged once, not every round');
  await t.rejects(h.reconciler.recycle(VM0), { code: 'libvirt-unavailable' });

  h.libvirt.unreachable = false;
  await h.reconciler.settle();
  t.equal(h.reconciler.status().state, 'ready');
  t.equal(h.reconciler.status().reason, '');
  t.equal(h.notifier.statuses.at(-1), 'desk: 2/2 clean');
  t.same([VM0, VM1].map((n) => h.libvirt.domain(n)?.uuid), uuids);
  t.equal(h.logger.find('libvirt-reachable').length, 1);
});

t.test('libvirt unreachable at start: degraded rather than starting, then the pool fills', async (t) => {
  const h = setup();
  h.libvirt.unreachable = true;
  await h.reconciler.settle();
  t.equal(h.reconciler.status().state, 'degraded');
  h.libvirt.unreachable = false;
  await fill(h);
  t.equal(h.reconciler.status().state, 'ready');
  t.equal(pool(h.reconciler.status()).counts.clean, 2);
});

t.test('a VM that fails to start is replaced after the backoff', async (t) => {
  const h = setup({ maxParallelBoots: 1 });
  h.libvirt.failNext('startDomain');
  await h.reconciler.settle();
  t.match(h.logger.find('step-failed'), [{ fields: { step: 'start-vm', vm: VM0, code: 'libvirt-failed' } }]);
  await h.reconciler.settle();
  t.same(h.libvirt.names(), [], 'the VM that never ran is gone, with its disk');
  h.clock.advance(300_000);
  await fill(h);
  await fill(h);
  t.equal(pool(h.reconciler.status()).counts.clean, 2);
});

t.test('a VM that fails to start counts as one failed clone, not two', async (t) => {
  const h = setup({ maxParallelBoots: 1 });
  h.libvirt.failNext('startDomain');
  const start = h.clock.now();
  await h.reconciler.settle();
  const r = await h.reconciler.settle();
  t.same(h.libvirt.names(), []);
  t.equal(r.wakeAt, start + 2_000, 'the backoff of a first failure');
});

t.test('run sends READY once after the first settle, keeps the pool, and stops when aborted', async (t) => {
  const h = setup();
  const stop = new AbortController();
  const done = h.reconciler.run(stop.signal);

  await h.clock.sleeping();
  t.equal(h.notifier.readyCount, 1);
  t.match(h.logger.find('supervisor-ready'), [{ fields: { status: 'desk: 0/2 clean, 2 booting' } }]);
  t.same(h.clock.deadlines(), [h.clock.now() + 250], 'while clones boot, libvirt is polled often');

  guestsUp(h);
  h.clock.advance(250);
  await h.clock.sleeping();
  t.equal(pool(h.reconciler.status()).counts.clean, 2);
  t.same(h.clock.deadlines(), [h.clock.now() + HEARTBEAT_MS], 'a settled pool sleeps for the heartbeat');

  h.clock.advance(HEARTBEAT_MS);
  await h.clock.sleeping();
  t.equal(h.notifier.readyCount, 1, 'READY is sent once');

  stop.abort();
  await done;
  t.same(h.clock.deadlines(), [], 'no sleep is left behind');
});

t.test('run wakes at a boot deadline, and at the watchdog interval when that is shorter', async (t) => {
  const h = setup();
  h.notifier.watchdogMs = 2_000;
  const stop = new AbortController();
  const done = h.reconciler.run(stop.signal);
  await h.clock.sleeping();
  guestsUp(h);
  h.clock.advance(250);
  await h.clock.sleeping();
  t.same(h.clock.deadlines(), [h.clock.now() + 2_000]);
  stop.abort();
  await done;
});

t.test('run returns at once when the signal is already aborted', async (t) => {
  const h = setup();
  const stop = new AbortController();
  stop.abort();
  await h.reconciler.run(stop.signal);
  t.same(h.libvirt.calls, []);
  t.same(h.clock.deadlines(), []);
});

t.test('a poke wakes run before the heartbeat', async (t) => {
  const h = setup();
  await fill(h);
  const events = h.libvirt.onDomainEvent(() => h.reconciler.poke());
  const stop = new AbortController();
  const done = h.reconciler.run(stop.signal);
  await h.clock.sleeping();
  t.same(h.clock.deadlines(), [h.clock.now() + HEARTBEAT_MS]);
  const before = h.libvirt.domain(VM0)?.uuid;

  h.libvirt.crash(VM0);
  await h.clock.sleeping();
  t.not(h.libvirt.domain(VM0)?.uuid, before, 'replaced without waiting for the clock');
  stop.abort();
  await done;
  events.dispose();
});

t.test('a recycle during run is acted on without waiting for the heartbeat', async (t) => {
  const h = setup();
  await fill(h);
  const stop = new AbortController();
  const done = h.reconciler.run(stop.signal);
  await h.clock.sleeping();
  await h.reconciler.recycle(VM1);
  await h.clock.sleeping();
  t.equal(h.libvirt.domain(VM1)?.record?.state, 'booting');
  stop.abort();
  await done;
});

t.test('a poke that arrives while a round is running is not lost', async (t) => {
  // A libvirt event between the read of libvirt and the sleep must still wake the loop.
  const h = setup();
  await fill(h);
  const events = h.libvirt.onDomainEvent(() => h.reconciler.poke());
  const before = h.libvirt.domain(VM0)?.uuid;
  let armed = true;
  h.notifier.onWatchdog = () => {
    if (!armed) return;
    armed = false;
    h.libvirt.crash(VM0);
  };
  const stop = new AbortController();
  const done = h.reconciler.run(stop.signal);
  await h.clock.sleeping();
  t.not(h.libvirt.domain(VM0)?.uuid, before, 'the crashed VM was replaced before the loop went to sleep');
  t.ok((h.clock.deadlines()[0] ?? Infinity) - h.clock.now() < HEARTBEAT_MS, 'the loop is not sleeping a whole heartbeat');
  stop.abort();
  await done;
  events.dispose();
});
