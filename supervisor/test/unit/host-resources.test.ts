import t from 'tap';
import { Reconciler } from '../../src/app/reconciler.js';
import { parseConfig } from '../../src/config/config.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeDisks } from '../fakes/fake-disks.js';
import { FakeHostResources } from '../fakes/fake-host-resources.js';
import { FakeLibvirt } from '../fakes/fake-libvirt.js';
import { FakeNotifier } from '../fakes/fake-notifier.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const GOLDEN = '/srv/golden/desk.qcow2';
const STORAGE = '/var/lib/tabula/pools/desk';

function setup() {
  const config = parseConfig(
    `[supervisor]
memory_reserve = 1000
disk_reserve = 500

[[pool]]
name = "desk"
golden_image = "${GOLDEN}"
size = 2
memory = 512
`,
    'unit.toml',
  );
  const libvirt = new FakeLibvirt();
  const disks = new FakeDisks();
  disks.putImage(GOLDEN);
  const resources = new FakeHostResources();
  const logger = new MemoryLogger();
  const reconciler = new Reconciler(config, { libvirt, disks, clock: new FakeClock(), notifier: new FakeNotifier(), logger, newSecret: () => 'x', resources });
  return { libvirt, resources, logger, reconciler };
}

t.test('memory: a pool waits while a VM would take the host under the reserve, says so once, and resumes by itself', async (t) => {
  const h = setup();
  h.resources.memoryMiB = 1400; // 400 MiB over the reserve: not enough for 512
  await h.reconciler.settle();
  t.same(h.libvirt.names(), [], 'no VM defined');
  const p = h.reconciler.status().pools[0];
  t.equal(p?.healthy, false, 'the pool says it is not well');
  t.match(p?.healthReason, /host memory low: 1400 MiB available, a VM needs 512 MiB over the 1000 MiB reserve/);
  await h.reconciler.settle();
  t.equal(h.logger.records.filter((r) => r.event === 'pool-waiting-for-resources').length, 1, 'said once, not every round');

  h.resources.memoryMiB = 2100; // room for two
  await h.reconciler.settle();
  t.equal(h.libvirt.names().length, 2, 'both VMs defined once memory is there');
  t.equal(h.reconciler.status().pools[0]?.healthy, true);
  t.ok(h.logger.records.some((r) => r.event === 'pool-resources-available'), 'and it says so');
});

t.test('memory: only as many VMs as fit', async (t) => {
  const h = setup();
  h.resources.memoryMiB = 1600; // one of 512
  await h.reconciler.settle();
  t.equal(h.libvirt.names().length, 1);
});

t.test('disk: no clone while the storage filesystem is under the disk reserve; resumes once space is freed', async (t) => {
  const h = setup();
  h.resources.diskMiB.set(STORAGE, 100);
  await h.reconciler.settle();
  t.same(h.libvirt.names(), [], 'nothing defined');
  t.match(h.reconciler.status().pools[0]?.healthReason, /disk full: 100 MiB free for \/var\/lib\/tabula\/pools\/desk, under the 500 MiB reserve/);
  h.resources.diskMiB.set(STORAGE, 5000);
  await h.reconciler.settle();
  t.equal(h.libvirt.names().length, 2);
});
