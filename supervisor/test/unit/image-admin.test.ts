// Golden images over fakes: import and its refusals, a switch (which image new
// clones use, what happens to the VMs of the old one), deleting an image once
// nothing uses it, rollback by hand, and the health-gated rollback.
import t from 'tap';
import { ImageAdmin } from '../../src/app/image-admin.js';
import { ImageImport, type ImportRequest } from '../../src/app/image-import.js';
import { PoolAdmin } from '../../src/app/pool-admin.js';
import { Reconciler } from '../../src/app/reconciler.js';
import { parseConfig } from '../../src/config/config.js';
import type { TabulaError } from '../../src/domain/errors.js';
import { withState } from '../../src/domain/vm.js';
import type { ImageInfo } from '../../src/ports/disks.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeDisks, GOLDEN_QCOW2 } from '../fakes/fake-disks.js';
import { FakeImageStore } from '../fakes/fake-image-store.js';
import { FakeLibvirt } from '../fakes/fake-libvirt.js';
import { FakeNotifier } from '../fakes/fake-notifier.js';
import { MemoryLogger } from '../fakes/memory-logger.js';
import { MemoryPoolStateStore } from '../fakes/memory-pool-state-store.js';

const GOLDEN = '/srv/golden/desk.qcow2';
const KERNEL = '/srv/golden/vmlinuz';
const STORE = '/var/lib/tabula/images';
const STORAGE = '/var/lib/tabula/pools/desk';
const BOOT_MS = 60_000;
const VM0 = 'tabula-desk-0';
const VM1 = 'tabula-desk-1';

function configText(golden = GOLDEN): string {
  return `[supervisor]
state_dir = "/var/lib/tabula"
boot_timeout = ${BOOT_MS / 1000}
disk_reserve = 100

[[pool]]
name = "desk"
golden_image = "${golden}"
size = 2
kernel = "${KERNEL}"
cmdline = "console=ttyS0"
`;
}

async function setup(opts: { store?: MemoryPoolStateStore; libvirt?: FakeLibvirt; disks?: FakeDisks; fill?: boolean } = {}) {
  const file = parseConfig(configText(), 'unit.toml');
  const libvirt = opts.libvirt ?? new FakeLibvirt();
  const disks = opts.disks ?? new FakeDisks();
  disks.putImage(GOLDEN);
  const clock = new FakeClock();
  const logger = new MemoryLogger();
  const reconciler = new Reconciler(file, { libvirt, disks, clock, notifier: new FakeNotifier(), logger, newSecret: () => 'x' });
  const state = opts.store ?? new MemoryPoolStateStore();
  const pools = new PoolAdmin(file, { keeper: reconciler, store: state, logger });
  await pools.load();
  const store = new FakeImageStore(STORE, disks);
  const importer = new ImageImport({ store, disks, logger, diskReserveMiB: () => reconciler.config().diskReserveMiB });
  const images = new ImageAdmin({ store, disks, pools, keeper: reconciler, libvirt, importer, logger });
  await images.start();
  const h = { file, libvirt, disks, clock, logger, reconciler, pools, state, store, importer, images };
  if (opts.fill ?? true) await fill(h);
  return h;
}

type Harness = Awaited<ReturnType<typeof setup>>;

/** Rounds until nothing is left to do, every guest booting coming up (unless `up` is false). */
async function fill(h: Pick<Harness, 'reconciler' | 'libvirt' | 'images'>, up = true): Promise<void> {
  for (let i = 0; i < 8; i++) {
    await h.reconciler.settle();
    let woke = false;
    for (const name of h.libvirt.names()) {
      const d = h.libvirt.domain(name);
      if (up && d?.active && d.record?.state === 'booting' && !d.agentConnected) {
        h.libvirt.guestUp(name);
        woke = true;
      }
    }
    await h.images.idle();
    if (!woke && (await h.reconciler.settle()).planned === 0) break;
  }
  await h.images.idle();
}

/** A disk image at `path` outside the store, of `bytes` bytes. */
function source(h: Harness, path: string, info: ImageInfo = GOLDEN_QCOW2, bytes = 3 * 2 ** 30): string {
  h.disks.putImage(path, info);
  h.store.setSize(path, bytes);
  return path;
}

async function imported(h: Harness, name: string, extra: Partial<ImportRequest> = {}): Promise<string> {
  const r = await h.importer.run({ source: source(h, `/srv/in/${name}`), ...extra });
  return r.path;
}

async function refused(p: Promise<unknown>): Promise<TabulaError> {
  return p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e as TabulaError,
  );
}

function golden(h: Harness, vm: string): string | undefined {
  return h.libvirt.domain(vm)?.record?.golden;
}

function pool(h: Harness) {
  const p = h.reconciler.status().pools[0];
  if (p === undefined) throw new Error('no pool');
  return p;
}

/** Puts a clean VM in use, as a hand-off would (there is no station LAN here: the session holds until ended). */
async function handOut(h: Harness, vm: string, id: string): Promise<void> {
  const r = h.libvirt.domain(vm)?.record;
  if (r?.state !== 'clean') throw new Error(`${vm} is not clean`);
  await h.libvirt.setVmRecord(vm, withState(r, 'in-use', h.clock.now(), { session: { id, station: '169.254.24.10', protocol: 'v1', handedAt: h.clock.now() } }));
}

t.test('import: the image lands in the store under its name, its kernel beside it; list shows it', async (t) => {
  const h = await setup();
  const kernel = source(h, '/srv/in/vmlinuz-2', GOLDEN_QCOW2, 8 * 2 ** 20);
  const r = await h.importer.run({ source: source(h, '/srv/in/win-2025.qcow2'), kernel });
  t.match(r, { name: 'win-2025.qcow2', path: `${STORE}/win-2025.qcow2`, format: 'qcow2', kernel: `${STORE}/win-2025.qcow2.kernel` });
  t.notOk('initrd' in r, 'no initrd given, none kept');
  t.same(await h.store.list(), ['win-2025.qcow2', 'win-2025.qcow2.kernel', 'win-2025.qcow2.sha256'], 'its sha256 beside it, nothing else in the store (no temporary file left)');
  t.equal(await h.store.readText('win-2025.qcow2.sha256'), `${r.sha256}  win-2025.qcow2\n`, 'as sha256sum writes it');
  t.ok(h.logger.find('golden-imported').length === 1, 'logged once');

  const named = await h.importer.run({ source: source(h, '/srv/in/other.img', { format: 'raw', virtualSize: 2 ** 30, actualSize: 2 ** 30 }), name: 'kiosk-raw' });
  t.equal(named.path, `${STORE}/kiosk-raw`, 'a name given wins over the file name');

  const list = await h.images.list();
  t.same(
    list.map((i) => [i.name, i.stored, i.format, i.currentOf, i.previousOf, i.liveVms, i.kernel ?? '-', i.sha256 ?? '-']),
    [
      ['desk.qcow2', false, 'qcow2', ['desk'], [], 2, '-', '-'],
      ['kiosk-raw', true, 'raw', [], [], 0, '-', named.sha256],
      ['win-2025.qcow2', true, 'qcow2', [], [], 0, `${STORE}/win-2025.qcow2.kernel`, r.sha256],
    ],
    'the store and the image the pool uses from elsewhere, by path',
  );
});

t.test('import refusals: each names what is wrong, and leaves nothing behind', async (t) => {
  const h = await setup();
  const cases: Array<[string, () => Promise<unknown>, string, RegExp]> = [
    ['an unsafe name', () => h.importer.run({ source: source(h, '/srv/in/a.qcow2'), name: '../etc/passwd' }), 'invalid-argument', /"\.\.\/etc\/passwd" is not a safe image name/],
    ['a name of the store kernels', () => h.importer.run({ source: source(h, '/srv/in/a.qcow2'), name: 'x.kernel' }), 'invalid-argument', /ends in \.kernel/],
    ['a relative path', () => h.importer.run({ source: 'in/a.qcow2' }), 'invalid-argument', /must be an absolute path/],
    ['an initrd without a kernel', () => h.importer.run({ source: source(h, '/srv/in/a.qcow2'), initrd: '/srv/in/initrd' }), 'invalid-argument', /an initrd needs a kernel/],
    ['a missing file', () => h.importer.run({ source: '/srv/in/nothing.qcow2' }), 'not-found', /\/srv\/in\/nothing\.qcow2 does not exist/],
    ['a text file', () => h.importer.run({ source: source(h, '/srv/in/notes.txt', { format: 'raw', virtualSize: 512, actualSize: 4096 }, 6) }), 'golden-image-invalid', /notes\.txt is 512 bytes: too small for a disk/],
    ['another format', () => h.importer.run({ source: source(h, '/srv/in/disk.vmdk', { format: 'vmdk', virtualSize: 2 ** 30, actualSize: 2 ** 20 }) }), 'golden-image-invalid', /is vmdk, not qcow2 or raw/],
    ['a backing chain', () => h.importer.run({ source: source(h, '/srv/in/top.qcow2', { ...GOLDEN_QCOW2, backingFile: '/srv/base.qcow2' }) }), 'golden-image-invalid', /has a backing file \(\/srv\/base\.qcow2\)/],
  ];
  for (const [what, run, code, message] of cases) {
    const e = await refused(run());
    t.equal(e.code, code, `${what}: ${code}`);
    t.match(e.message, message, `${what}: ${e.message}`);
  }
  h.disks.putImage('/srv/in/corrupt.qcow2', GOLDEN_QCOW2, { corruptions: 4, leaks: 2 });
  const corrupt = await refused(h.importer.run({ source: '/srv/in/corrupt.qcow2' }));
  t.match(corrupt, { code: 'golden-image-invalid', message: /corrupt\.qcow2 is corrupt: qemu-img check found 4 corruption/ }, 'a corrupt qcow2');

  h.store.free = 3 * 2 ** 30 + 50 * 2 ** 20;
  const full = await refused(h.importer.run({ source: source(h, '/srv/in/big.qcow2') }));
  t.equal(full.code, 'disk-full', 'no room');
  t.match(full.message, /has 3122 MiB free; the import needs 3072 MiB plus disk_reserve \(100 MiB\)/, full.message);
  h.store.free = 100 * 2 ** 30;

  await h.importer.run({ source: source(h, '/srv/in/a.qcow2') });
  const twice = await refused(h.importer.run({ source: source(h, '/srv/in/a.qcow2') }));
  t.match(twice, { code: 'conflict', message: /an image named "a\.qcow2" is already in the store/ }, 'a name already taken');

  h.store.failCopy = true;
  const cut = await refused(h.importer.run({ source: source(h, '/srv/in/b.qcow2'), kernel: source(h, '/srv/in/k', GOLDEN_QCOW2, 2 ** 20) }));
  t.equal(cut.code, 'disk-failed', 'a copy that fails half-way');
  t.same(await h.store.list(), ['a.qcow2', 'a.qcow2.sha256'], 'leaves neither its image, its kernel nor a temporary file');
  t.equal(h.logger.find('golden-import-refused').length, cases.length + 4, 'every refusal is logged');
});

t.test('an import cut short by a crash: its leftovers go at the next start', async (t) => {
  const disks = new FakeDisks();
  disks.putFile(`${STORE}/.win.qcow2.importing`);
  disks.putFile(`${STORE}/win.qcow2.kernel`);
  disks.putFile(`${STORE}/win.qcow2.sha256`);
  disks.putFile(`${STORE}/.win.qcow2.sha256.importing`);
  disks.putImage(`${STORE}/kept.qcow2`);
  disks.putFile(`${STORE}/kept.qcow2.sha256`);
  const h = await setup({ disks, fill: false });
  t.same(await h.store.list(), ['kept.qcow2', 'kept.qcow2.sha256'], 'the temporary copies, and the kernel and sha256 whose image never arrived, are gone');
  t.equal(h.logger.find('golden-import-leftover-removed').length, 4);
});

t.test('use: new clones come from the new image; a session finishes on the old one; clean VMs are replaced one at a time', async (t) => {
  const h = await setup();
  t.same([golden(h, VM0), golden(h, VM1)], [GOLDEN, GOLDEN], 'each VM records the image it was cloned from');
  const v2 = await imported(h, 'v2.qcow2');
  await handOut(h, VM0, 's1');

  await h.images.use('desk', 'v2.qcow2');
  t.match(h.state.stored?.['desk']?.image, { current: { path: v2 }, previous: { path: GOLDEN }, configImage: GOLDEN, confirmed: false }, 'kept in pools.json');
  await h.reconciler.settle();
  t.match(pool(h).image, { goldenImage: v2, previousGoldenImage: GOLDEN, goldenConfirmed: false }, 'the pool says which image it clones from now');
  t.match(h.logger.find('vm-destroyed'), [{ fields: { vm: VM1, reason: 'image-changed' } }], 'the clean VM of the old image is taken away');
  t.equal(h.libvirt.domain(VM0)?.record?.state, 'in-use', 'the session goes on');
  await fill(h);
  t.equal(golden(h, VM1), v2, 'its replacement records the new image');
  t.same(h.disks.backingOf(`${STORAGE}/${VM1}.qcow2`), { path: v2, format: 'qcow2' }, "and its overlay is backed by it");
  t.match(h.libvirt.domain(VM1)?.xml ?? '', `<kernel>${KERNEL}</kernel>`, "an image without its own kernel boots the pool's");
  t.equal(golden(h, VM0), GOLDEN, 'the VM in use stays on the old image');
  t.same(h.disks.backingOf(`${STORAGE}/${VM0}.qcow2`), { path: GOLDEN, format: 'qcow2' });
  t.equal(pool(h).image?.goldenConfirmed, false, 'one clone up of two: still on probation');

  await h.reconciler.endSession('s1');
  await fill(h);
  t.same([golden(h, VM0), golden(h, VM1)], [v2, v2], 'after the session its VM is replaced by a clone of the new image');
  t.equal(pool(h).image?.goldenConfirmed, true, 'two clones up: the switch is confirmed');
  t.equal(h.logger.find('golden-confirmed').length, 1);
  t.equal(h.state.stored?.['desk']?.image?.confirmed, true, 'and that is kept');
});

t.test('one stale VM at a time: the others stay ready while a clone of the new image boots', async (t) => {
  const h = await setup();
  await imported(h, 'v2.qcow2');
  await h.images.use('desk', 'v2.qcow2');
  await h.reconciler.settle();
  const states = () => [VM0, VM1].map((n) => `${h.libvirt.domain(n)?.record?.state}:${h.libvirt.domain(n)?.record?.golden === GOLDEN ? 'old' : 'new'}`);
  t.same(states(), ['booting:new', 'clean:old'], 'slot 0 is replaced first; slot 1 stays clean meanwhile');
  await fill(h);
  t.same(states(), ['clean:new', 'clean:new']);
});

t.test('an image no pool uses any more is deleted once no VM is backed by it', async (t) => {
  const h = await setup();
  const v2 = await imported(h, 'v2.qcow2');
  const v3 = await imported(h, 'v3.qcow2');
  const v4 = await imported(h, 'v4.qcow2');
  await h.images.use('desk', 'v2.qcow2');
  await fill(h);
  await handOut(h, VM0, 's1');
  await h.images.use('desk', 'v3.qcow2');
  await fill(h);
  await h.images.use('desk', 'v4.qcow2');
  await fill(h);
  t.equal(golden(h, VM0), v2, 'a session is still under way on v2');
  t.ok(h.disks.has(v2), 'so v2 stays, though it is neither current nor previous');
  t.same(h.state.stored?.['desk']?.retired, [v2], "v2 is listed to be deleted (the config file's image never is)");
  const listed = (await h.images.list()).find((i) => i.path === v2);
  t.match(listed, { currentOf: [], previousOf: [], liveVms: 1 }, 'the list shows the live VM on it');

  await h.reconciler.endSession('s1');
  await fill(h);
  await h.images.idle();
  t.notOk(h.disks.has(v2), 'once the session ended, v2 is deleted');
  t.ok(h.disks.has(v3) && h.disks.has(v4), 'the previous (v3) and current (v4) images stay');
  t.ok(h.disks.has(GOLDEN), "the config file's image is never deleted (it is not in the store)");
  t.match(h.logger.find('golden-image-removed'), [{ fields: { image: v2 } }]);
  t.notOk(h.state.stored?.['desk']?.retired, 'and forgotten');
});

t.test('rollback: back to the previous image, by hand; without one it is refused', async (t) => {
  const h = await setup();
  const none = await refused(h.images.rollback('desk'));
  t.match(none, { code: 'not-found', message: /pool desk has no previous golden image to roll back to/ });
  t.match(await refused(h.images.use('lab', 'v2.qcow2')), { code: 'not-found', message: /no pool named "lab"/ });
  t.match(await refused(h.images.use('desk', 'v9.qcow2')), { code: 'not-found', message: /no image named "v9\.qcow2" in the store/ });

  const v2 = await imported(h, 'v2.qcow2');
  await h.images.use('desk', 'v2.qcow2');
  await fill(h);
  await h.images.rollback('desk');
  await h.reconciler.settle();
  t.match(pool(h).image, { goldenImage: GOLDEN, previousGoldenImage: v2, goldenConfirmed: true }, 'the old image is current again, the new one kept as previous');
  t.match(h.logger.find('golden-rollback'), [{ level: 'notice', fields: { pool: 'desk', from: v2, to: GOLDEN, trigger: 'admin' } }]);
  await fill(h);
  t.same([golden(h, VM0), golden(h, VM1)], [GOLDEN, GOLDEN], 'the VMs are clones of it again');
});

t.test('a switch outlives a restart; the config file wins once its golden_image changes', async (t) => {
  const first = await setup();
  const v2 = await imported(first, 'v2.qcow2');
  await first.images.use('desk', 'v2.qcow2');
  const again = await setup({ store: first.state, libvirt: first.libvirt, disks: first.disks, fill: false });
  t.equal(again.reconciler.config().pools[0]?.goldenImage, v2, 'a new supervisor clones from the switched image');

  const edited = parseConfig(configText('/srv/golden/desk-2026.qcow2'), 'unit.toml');
  again.disks.putImage('/srv/golden/desk-2026.qcow2');
  await again.pools.reload(edited);
  t.equal(again.reconciler.config().pools[0]?.goldenImage, '/srv/golden/desk-2026.qcow2', "the file's new image wins");
  t.match(again.logger.find('pool-override-dropped'), [{ fields: { pool: 'desk', what: 'image', why: /golden_image changed to \/srv\/golden\/desk-2026\.qcow2/ } }]);
  t.same(again.state.stored?.['desk'], { retired: [v2] }, "the switched image is to be deleted once unused (the file's old one is staff's)");
});

/** `n` times: past any backoff, a clone boots and its guest never reports up. */
async function failClones(h: Harness, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    h.clock.advance(300_000);
    await fill(h, false);
    h.clock.advance(BOOT_MS);
    await h.reconciler.settle();
    await h.images.idle();
  }
}

t.test('health-gated: clones of a new image that never come up roll the pool back by itself', async (t) => {
  const h = await setup();
  const bad = await imported(h, 'bad.qcow2');
  await h.images.use('desk', 'bad.qcow2');
  await failClones(h, 2);
  t.equal(pool(h).image?.goldenImage, bad, 'two failures: still on the new image');
  await failClones(h, 1);
  await h.images.idle();
  t.match(pool(h).image, { goldenImage: GOLDEN, previousGoldenImage: bad, goldenConfirmed: true }, 'the third: back to the old image');
  const [rb] = h.logger.find('golden-rollback');
  t.match(rb, { level: 'err', fields: { pool: 'desk', from: bad, to: GOLDEN, trigger: 'auto', reason: /3 clones of .*bad\.qcow2 in a row failed to come up \(last: the guest did not report up in time\)/ } });
  await h.reconciler.settle();
  t.match(pool(h), { healthy: false, healthReason: new RegExp(`^golden image rolled back to ${GOLDEN}: 3 clones`) }, 'the pool says so in its health');
  t.equal(golden(h, VM1), GOLDEN, 'the other VM stayed clean on the old image throughout');
  t.equal(h.libvirt.domain(VM1)?.record?.state, 'clean');
  await fill(h);
  t.same([golden(h, VM0), golden(h, VM1)], [GOLDEN, GOLDEN], 'the empty slot is refilled from the old image');
  t.match(pool(h), { healthy: true, healthReason: '' }, 'and once a clone is up the pool is healthy again');
});

t.test('a confirmed switch is not rolled back when clones later fail', async (t) => {
  const h = await setup();
  const v2 = await imported(h, 'v2.qcow2');
  await h.images.use('desk', 'v2.qcow2');
  await fill(h);
  t.equal(pool(h).image?.goldenConfirmed, true, 'both clones came up: confirmed');
  await h.reconciler.recycle(VM0);
  await failClones(h, 4);
  await h.images.idle();
  t.equal(pool(h).image?.goldenImage, v2, 'four failures later the pool is still on it');
  t.equal(h.logger.find('golden-rollback').length, 0, 'nothing rolled back');
  t.match(pool(h), { healthy: false, healthReason: /clones in a row failed to come up/ }, 'it is unhealthy the ordinary way');
});
