import t from 'tap';
import { PoolAdmin } from '../../src/app/pool-admin.js';
import { Reconciler } from '../../src/app/reconciler.js';
import { parseConfig } from '../../src/config/config.js';
import { TabulaError } from '../../src/domain/errors.js';
import { judgeOverrides } from '../../src/domain/pool-overrides.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeDisks } from '../fakes/fake-disks.js';
import { FakeHostResources } from '../fakes/fake-host-resources.js';
import { FakeLibvirt } from '../fakes/fake-libvirt.js';
import { FakeNotifier } from '../fakes/fake-notifier.js';
import { MemoryLogger } from '../fakes/memory-logger.js';
import { MemoryPoolStateStore } from '../fakes/memory-pool-state-store.js';

const GOLDEN = '/srv/golden/desk.qcow2';

function configText(deskSize = 1, extra = ''): string {
  return `[supervisor]
memory_reserve = 1000

[[pool]]
name = "desk"
golden_image = "${GOLDEN}"
size = ${deskSize}
memory = 512
spice_port_base = 5920

[[pool]]
name = "lab"
golden_image = "${GOLDEN}"
size = 1
memory = 512
spice_port_base = 5930
${extra}`;
}

async function setup(store = new MemoryPoolStateStore()) {
  const file = parseConfig(configText(), 'unit.toml');
  const libvirt = new FakeLibvirt();
  const disks = new FakeDisks();
  disks.putImage(GOLDEN);
  const resources = new FakeHostResources();
  const logger = new MemoryLogger();
  const reconciler = new Reconciler(file, { libvirt, disks, clock: new FakeClock(), notifier: new FakeNotifier(), logger, newSecret: () => 'x', resources });
  const admin = new PoolAdmin(file, { keeper: reconciler, store, logger });
  await admin.load();
  const fill = async () => {
    await reconciler.settle();
    for (const name of libvirt.names()) if (libvirt.domain(name)?.record?.state === 'booting') libvirt.guestUp(name);
    await reconciler.settle();
  };
  await fill();
  return { libvirt, resources, logger, reconciler, admin, store, fill };
}

const sizes = (h: Awaited<ReturnType<typeof setup>>) => h.reconciler.status().pools.map((p) => `${p.name}:${p.counts.clean}/${p.size}${p.drained ? ' drained' : ''}`);

async function refused(p: Promise<unknown>): Promise<TabulaError | undefined> {
  return p.then(() => undefined, (e: unknown) => e as TabulaError);
}

t.test('resize: the pool grows and shrinks to the new size, remembered as an override of the file', async (t) => {
  const h = await setup();
  t.same(sizes(h), ['desk:1/1', 'lab:1/1']);
  await h.admin.resize('desk', 2);
  await h.fill();
  t.same(sizes(h), ['desk:2/2', 'lab:1/1'], 'a second VM reaches clean');
  t.same(h.store.stored, { desk: { size: 2, configSize: 1 } }, 'stored with the size the file had');
  t.equal(h.reconciler.config().pools[0]?.size, 2, 'the config in force says 2');
  t.match(h.logger.find('pool-resized')[0]?.fields, { pool: 'desk', from: 1, to: 2 });
  await h.admin.resize('desk', 1);
  await h.fill();
  t.same(sizes(h), ['desk:1/1', 'lab:1/1'], 'back to one');
  t.same(h.store.stored, {}, "back to the file's size: nothing left to remember");
});

t.test('resize is refused, naming why, out of 0..64, onto another pool\'s ports, or beyond the host\'s memory; nothing changes', async (t) => {
  const h = await setup();
  const before = h.store.saves;
  const range = await refused(h.admin.resize('desk', 65));
  t.equal(range?.code, 'invalid-argument');
  t.match(range?.message, /size 65 is out of range: a pool keeps 0 to 64 VMs/);
  const ports = await refused(h.admin.resize('desk', 12));
  t.equal(ports?.code, 'invalid-argument');
  t.match(ports?.message, /pool desk cannot keep 12 VMs: .*overlap/);
  h.resources.memoryMiB = 2200; // 1200 MiB above the reserve: room for two more 512 MiB VMs, not three
  await h.reconciler.settle();
  const memory = await refused(h.admin.resize('desk', 4));
  t.equal(memory?.code, 'invalid-argument');
  t.match(memory?.message, /pool desk cannot grow to 4 VMs: 3 more need 1536 MiB of memory, the host has 1200 MiB above the 1000 MiB reserve/);
  const unknown = await refused(h.admin.resize('nope', 1));
  t.equal(unknown?.code, 'not-found');
  t.match(unknown?.message, /no pool named "nope"/);
  t.equal(h.store.saves, before, 'nothing was stored');
  t.same(sizes(h), ['desk:1/1', 'lab:1/1'], 'nothing changed');
  await h.admin.resize('desk', 3);
  t.equal(h.reconciler.config().pools[0]?.size, 3, 'what fits is taken');
});

t.test('drain and undrain: stored, told in the status, idempotent', async (t) => {
  const h = await setup();
  await h.admin.drain('lab');
  await h.admin.drain('lab');
  t.same(sizes(h), ['desk:1/1', 'lab:1/1 drained']);
  t.same(h.store.stored, { lab: { drained: true } });
  t.equal(h.logger.find('pool-drained').length, 2);
  await h.admin.undrain('lab');
  t.same(sizes(h), ['desk:1/1', 'lab:1/1']);
  t.same(h.store.stored, {});
  t.equal((await refused(h.admin.drain('nope')))?.code, 'not-found');
});

t.test('a store that cannot be written leaves everything as it was', async (t) => {
  const h = await setup();
  h.store.failNextSave = true;
  t.ok(await refused(h.admin.drain('desk')), 'the drain fails');
  t.same(sizes(h), ['desk:1/1', 'lab:1/1'], 'and is not in force');
});

t.test('after a restart the stored changes are taken up before the first round', async (t) => {
  const store = new MemoryPoolStateStore();
  store.stored = { desk: { size: 2, configSize: 1 }, lab: { drained: true } };
  const h = await setup(store);
  t.same(sizes(h), ['desk:2/2', 'lab:0/1 drained'], 'resized, and drained: lab never got a VM');
});

t.test('a reload keeps staff\'s changes unless the file changed that pool\'s size; a bad store is reported, not fatal', async (t) => {
  const h = await setup();
  await h.admin.resize('desk', 2);
  await h.admin.drain('lab');
  await h.admin.reload(parseConfig(configText(1, 'vcpus = 2'), 'unit.toml'));
  await h.reconciler.settle();
  t.same(sizes(h).map((s) => s.replace(/:\d+\//, ':')), ['desk:2', 'lab:1 drained'], 'same file size: the resize stays');
  await h.admin.reload(parseConfig(configText(3), 'unit.toml'));
  await h.reconciler.settle();
  t.same(sizes(h).map((s) => s.replace(/:\d+\//, ':')), ['desk:3', 'lab:1 drained'], "the file's new size wins");
  t.same(h.store.stored, { lab: { drained: true } });
  t.match(h.logger.find('pool-override-dropped')[0]?.fields, { pool: 'desk', what: 'size' });

  const store = new MemoryPoolStateStore();
  store.failLoad = true;
  const bad = await setup(store);
  t.same(sizes(bad), ['desk:1/1', 'lab:1/1'], "the file's pools");
  t.equal(bad.logger.find('pool-state-unusable').length, 1, 'said');
});

t.test('judgeOverrides: gone pools and superseded sizes are dropped, with why', async (t) => {
  const j = judgeOverrides(new Map([['desk', 2], ['lab', 1]]), {
    desk: { size: 4, configSize: 2, drained: true },
    lab: { size: 3, configSize: 2 },
    old: { drained: true },
  });
  t.same(j.kept, { desk: { drained: true, size: 4, configSize: 2 } });
  t.same(
    j.dropped.map((d) => `${d.pool} ${d.what}`),
    ['lab size', 'old drained'],
  );
  t.match(j.dropped[0]?.why, /changed to 1/);
});

t.test('timeouts: set on top of the file, in force for the reconciler and in the status, stored; refused whole when one is bad', async (t) => {
  const h = await setup();
  await h.admin.setTimeouts('desk', { idle_timeout: 600, boot_timeout: 30 });
  const desk = h.reconciler.config().pools[0];
  t.same(desk?.limits, { idleTimeoutMs: 600_000, maxSessionMs: 14_400_000, warnBeforeMs: 60_000 }, 'the limits the planner and the station channel read');
  t.equal(desk?.bootTimeoutMs, 30_000);
  t.same(h.store.stored, { desk: { timeouts: { idle_timeout: { seconds: 600, configSeconds: 300 }, boot_timeout: { seconds: 30, configSeconds: 180 } } } });
  t.match(h.logger.find('pool-timeouts-set')[0]?.fields, { pool: 'desk', idle_timeout: 600, boot_timeout: 30 });
  await h.reconciler.settle();
  t.same(h.reconciler.status().pools[0]?.timeouts, { idle_timeout: 600, max_session: 14_400, session_warning: 60, boot_timeout: 30 }, 'told in the status');

  const saves = h.store.saves;
  const bad = await refused(h.admin.setTimeouts('desk', { idle_timeout: 60, session_warning: 7200 }));
  t.equal(bad?.code, 'invalid-argument');
  t.equal(bad?.message, 'session_warning must be from 0 to 3600 seconds (0: no warning), not 7200');
  t.equal((await refused(h.admin.setTimeouts('nope', { idle_timeout: 60 })))?.code, 'not-found');
  t.equal(h.store.saves, saves, 'nothing stored');
  t.equal(h.reconciler.config().pools[0]?.limits.idleTimeoutMs, 600_000, 'nothing changed');

  await h.admin.setTimeouts('desk', { idle_timeout: 300, boot_timeout: 180 });
  t.same(h.store.stored, {}, "back to the file's values: nothing left to remember");
});

t.test('timeouts outlive a restart; a file whose value of that key changed wins, the others stay', async (t) => {
  const h = await setup();
  await h.admin.setTimeouts('lab', { idle_timeout: 600, max_session: 60 });
  const again = await setup(h.store);
  t.same(again.reconciler.config().pools[1]?.limits, { idleTimeoutMs: 600_000, maxSessionMs: 60_000, warnBeforeMs: 60_000 }, 'taken up at start');
  await again.admin.reload(parseConfig(configText(1, 'idle_timeout = 900'), 'unit.toml'));
  t.same(again.reconciler.config().pools[1]?.limits, { idleTimeoutMs: 900_000, maxSessionMs: 60_000, warnBeforeMs: 60_000 }, "the file's new idle_timeout wins; max_session stays");
  t.same(again.store.stored, { lab: { timeouts: { max_session: { seconds: 60, configSeconds: 14_400 } } } });
  t.match(again.logger.find('pool-override-dropped')[0]?.fields, { pool: 'lab', what: 'idle_timeout', why: "the config file's idle_timeout changed to 900 since it was set" });
});
