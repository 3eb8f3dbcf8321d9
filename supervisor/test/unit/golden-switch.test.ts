// The pure rules of golden images: the store's names, an import's refusals,
// switching and rolling back, the probation of a switch, what may be deleted,
// and how a switch lives in pools.json and the config in force.
import t from 'tap';
import { parseConfig, withPoolImage } from '../../src/config/config.js';
import { checkProblem, goldenProblem } from '../../src/domain/golden.js';
import { imageNameProblem, imagesIn, importLeftovers, inStore, roomProblem, sizeProblem } from '../../src/domain/golden-store.js';
import { confirmAfter, removableImages, rollbackImages, switchImages, watchClone, type PoolImages, type SwitchWatch } from '../../src/domain/golden-switch.js';
import { isPoolOverrides, judgeOverrides } from '../../src/domain/pool-overrides.js';

const FILE = { path: '/srv/golden.qcow2' };
const A = { path: '/var/lib/tabula/images/a.qcow2' };
const B = { path: '/var/lib/tabula/images/b.qcow2', kernel: '/var/lib/tabula/images/b.qcow2.kernel' };
const C = { path: '/var/lib/tabula/images/c.qcow2' };

t.test('image names: safe file names only, and none the store keeps for kernels', async (t) => {
  for (const ok of ['win11-2025.qcow2', 'Desk_2', 'ubuntu+24.04.raw', 'x']) t.equal(imageNameProblem(ok), undefined, `${ok} is fine`);
  for (const bad of ['', '.hidden', '../x', 'a/b', 'a b', '-rf', 'x'.repeat(101), 'ok..qcow2']) t.match(imageNameProblem(bad) ?? '', /is not a safe image name/, `${JSON.stringify(bad)} is refused`);
  t.match(imageNameProblem('a.kernel'), /ends in \.kernel/);
  t.match(imageNameProblem('a.initrd'), /ends in \.initrd/);
});

t.test('the store listing: images, their kernels and initrds beside them, leftovers of an import cut short', async (t) => {
  const files = ['a.qcow2', 'a.qcow2.kernel', 'a.qcow2.initrd', '.b.qcow2.importing', 'c.qcow2.kernel', 'vmlinuz', '.c.qcow2.kernel.importing'];
  t.same(imagesIn(files), ['c.qcow2.kernel', 'a.qcow2', 'vmlinuz'].sort(), 'a kernel whose image is missing is not hidden (it is a leftover)');
  t.same(importLeftovers(files), ['.b.qcow2.importing', '.c.qcow2.kernel.importing', 'c.qcow2.kernel']);
  t.ok(inStore('/var/lib/tabula/images', A.path));
  t.notOk(inStore('/var/lib/tabula/images', FILE.path));
  t.notOk(inStore('/var/lib/tabula/images', '/var/lib/tabula/images/sub/x'), 'nothing below it');
  t.notOk(inStore('/var/lib/tabula/images', '/var/lib/tabula/images-old/x'));
});

t.test("an import's refusals say what is wrong", async (t) => {
  t.equal(roomProblem('/d', 2 * 2 ** 30, 3 * 2 ** 30, 1024), undefined, 'the size plus the reserve fits');
  t.equal(roomProblem('/d', 2 * 2 ** 30, 3 * 2 ** 30 - 1, 1024), 'disk full: /d has 3071 MiB free; the import needs 2048 MiB plus disk_reserve (1024 MiB)');
  t.equal(sizeProblem('/x.txt', 512), 'golden image /x.txt is 512 bytes: too small for a disk (at least 1 MiB)');
  t.equal(sizeProblem('/x.raw', 2 ** 20), undefined);
  t.equal(checkProblem('/x', { corruptions: 0, leaks: 3 }), undefined, 'leaked clusters only waste space');
  t.equal(checkProblem('/x', { corruptions: 2, leaks: 0 }), 'golden image /x is corrupt: qemu-img check found 2 corruption(s)');
  t.equal(checkProblem('/x', { corruptions: 0, leaks: 0, error: 'Could not read L1 table' }), 'golden image /x fails qemu-img check: Could not read L1 table');
  t.equal(goldenProblem('/x', { format: 'qcow2', virtualSize: 2 ** 30, backingFile: '/base' }), 'golden image /x has a backing file (/base); flatten it first (qemu-img convert)');
});

t.test('switch: the new image current, the old one previous, the one before retired', async (t) => {
  const first = switchImages(undefined, FILE, A);
  t.same(first, { images: { current: A, previous: FILE, configImage: FILE.path, confirmed: false }, retired: [] });
  const second = switchImages(first?.images, FILE, B);
  t.same(second, { images: { current: B, previous: A, configImage: FILE.path, confirmed: false }, retired: [] }, "the file's image is never retired");
  const third = switchImages(second?.images, FILE, C);
  t.same(third?.retired, [A.path], 'A is neither current nor previous any more');
  t.same(switchImages(third?.images, FILE, A)?.retired, [B.path], 'back to A: B goes, A is current again');
  t.equal(switchImages(third?.images, FILE, C), undefined, 'switching to the current image changes nothing');
  t.same(switchImages(third?.images, FILE, B)?.retired, [], 'to the previous image: nothing retired');
});

t.test('rollback: current and previous swap, confirmed at once; none without a previous image', async (t) => {
  const s = switchImages(undefined, FILE, B)?.images as PoolImages;
  t.same(rollbackImages(s), { images: { current: FILE, previous: B, configImage: FILE.path, confirmed: true }, retired: [] });
  t.equal(rollbackImages(undefined), undefined);
  t.equal(rollbackImages({ current: A, configImage: FILE.path, confirmed: true }), undefined);
});

t.test("probation: N clones up confirm; failures in a row roll back; other images' clones do not count", async (t) => {
  const rule = { confirmAfter: 2, rollbackAfter: 3 };
  let w: SwitchWatch = { image: B.path, up: 0, failed: 0 };
  const step = (ok: boolean, image = B.path) => {
    const r = watchClone(w, { pool: 'desk', image, ok, ...(ok ? {} : { reason: 'boot timeout' }) }, rule);
    w = r.watch;
    return r.verdict;
  };
  t.equal(step(false), undefined);
  t.equal(step(false), undefined);
  t.equal(step(false, A.path), undefined, 'a clone of the old image failing says nothing of the new one');
  t.equal(step(true), undefined, 'one up: the failures in a row start again');
  t.equal(w.failed, 0);
  t.equal(step(false), undefined);
  t.equal(step(false), undefined);
  t.equal(step(false), 'rollback', 'three in a row: back');
  t.equal(w.lastFailure, 'boot timeout');
  w = { image: B.path, up: 0, failed: 0 };
  t.equal(step(true), undefined);
  t.equal(step(true), 'confirm', 'two up: confirmed');
  t.same([0, 1, 2, 5].map(confirmAfter), [1, 1, 2, 2], 'two clones confirm, one for a pool of one, never none');
});

t.test('removable: retired images used by no pool and backing no VM', async (t) => {
  t.same(removableImages([A.path, B.path, A.path, C.path], new Set([B.path])), [A.path, C.path]);
  t.same(removableImages([], new Set()), []);
});

t.test('pools.json: a switch holds until the config file names another golden_image; a pool gone retires its images', async (t) => {
  const images = switchImages(undefined, FILE, B)?.images as PoolImages;
  const sizes = new Map([['desk', 2]]);
  const stored = { desk: { image: images, retired: [A.path] }, gone: { image: switchImages(undefined, FILE, C)?.images as PoolImages, size: 3, configSize: 2 } };
  t.ok(isPoolOverrides(stored), 'well formed');
  const same = judgeOverrides(sizes, stored, new Map([['desk', FILE.path]]));
  t.same(same.kept['desk'], { image: images, retired: [A.path] }, 'the file still says the same: the switch holds');
  t.same(same.kept['gone'], { retired: [C.path] }, "a pool no longer configured: its switched image is retired, the file's kept");
  t.same(
    same.dropped.map((d) => `${d.pool} ${d.what}`),
    ['gone size', 'gone image'],
  );
  const edited = judgeOverrides(sizes, stored, new Map([['desk', '/srv/golden-2.qcow2']]));
  t.same(edited.kept['desk'], { retired: [A.path, B.path] }, 'the file changed: the switch is dropped and its image retired');
  t.match(edited.dropped, [{ pool: 'desk', what: 'image', why: "the config file's golden_image changed to /srv/golden-2.qcow2 since the image was switched" }]);
  for (const bad of [{ desk: { image: { current: { path: 'relative' }, configImage: '/x', confirmed: true } } }, { desk: { image: { current: A, configImage: '/x' } } }, { desk: { retired: ['x'] } }, { desk: { retired: '/x' } }]) {
    t.notOk(isPoolOverrides(bad), `refused: ${JSON.stringify(bad)}`);
  }
});

t.test('the config in force: the switched disk, its own kernel (or the pool\'s), the pool\'s command line', async (t) => {
  const config = parseConfig(
    `[[pool]]
name = "desk"
golden_image = "${FILE.path}"
size = 1
kernel = "/srv/vmlinuz"
initrd = "/srv/initrd.img"
cmdline = "console=ttyS0"
`,
    'unit.toml',
  );
  const own = withPoolImage(config, 'desk', { current: B, previous: FILE, configImage: FILE.path, confirmed: false }).pools[0];
  t.match(own, { goldenImage: B.path, kernel: B.kernel, cmdline: 'console=ttyS0', goldenSwitch: { previous: FILE.path, confirmed: false } });
  t.notOk(own && 'initrd' in own, 'an image with its own kernel and no initrd boots without one');
  const plain = withPoolImage(config, 'desk', { current: A, previous: FILE, configImage: FILE.path, confirmed: true }).pools[0];
  t.match(plain, { goldenImage: A.path, kernel: '/srv/vmlinuz', initrd: '/srv/initrd.img' }, "an image without a kernel boots the pool's");
  t.throws(() => withPoolImage(config, 'lab', { current: A, configImage: FILE.path, confirmed: true }), { code: 'not-found' });
});
