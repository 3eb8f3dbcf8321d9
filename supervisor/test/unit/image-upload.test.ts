// An image uploaded from the admin page, over fakes: its bytes are written
// straight into the store under the import's temporary name, checked there as
// a copy would be, and renamed into place (no second copy); every refusal
// names what is wrong, most before a byte is sent, and leaves nothing behind.
import t from 'tap';
import { ImageImport } from '../../src/app/image-import.js';
import type { TabulaError } from '../../src/domain/errors.js';
import type { ImageCheck, ImageInfo } from '../../src/ports/disks.js';
import type { IncomingStream } from '../../src/ports/image-store.js';
import { FakeDisks, GOLDEN_QCOW2 } from '../fakes/fake-disks.js';
import { fakeSha256, FakeImageStore } from '../fakes/fake-image-store.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const STORE = '/var/lib/tabula/images';
const MIB = 2 ** 20;

function setup() {
  const disks = new FakeDisks();
  const store = new FakeImageStore(STORE, disks);
  const logger = new MemoryLogger();
  const importer = new ImageImport({ store, disks, logger, diskReserveMiB: () => 100 });
  return { disks, store, logger, importer };
}

type Harness = ReturnType<typeof setup>;

interface Upload extends IncomingStream {
  /** Where it was written, when it was. */
  written?: string;
}

/**
 * A browser's upload of `bytes` bytes: what lands is a file FakeDisks knows as
 * `info`. `arrive` says how many bytes come before the connection ends;
 * `during` runs while it is on the wire.
 */
function upload(h: Harness, bytes: number, o: { info?: ImageInfo; check?: ImageCheck; arrive?: number; during?: () => Promise<void> } = {}): Upload {
  const u: Upload = {
    bytes,
    writeTo: async (path, progress) => {
      u.written = path;
      h.disks.putImage(path, o.info ?? GOLDEN_QCOW2, o.check);
      const arrive = o.arrive ?? bytes;
      progress(Math.floor(arrive / 2));
      await o.during?.();
      progress(arrive - Math.floor(arrive / 2));
      return { bytes: arrive, sha256: fakeSha256(path) };
    },
  };
  return u;
}

async function refused(p: Promise<unknown>): Promise<TabulaError> {
  return p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e as TabulaError,
  );
}

t.test('an upload is written into the store under a temporary name, checked there, and renamed into place with its sha256', async (t) => {
  const h = setup();
  const seen: unknown[] = [];
  const u = upload(h, 300 * MIB, { during: async () => void seen.push(h.importer.progress()) });
  const r = await h.importer.adopt({ name: 'win-2025.qcow2', upload: u });
  t.equal(u.written, `${STORE}/.win-2025.qcow2.importing`, 'written where the sweep at start finds a leftover');
  t.same(seen, [{ name: 'win-2025.qcow2', copied: 150 * MIB, total: 300 * MIB }], 'the import under way shows how much arrived');
  t.same(r, { name: 'win-2025.qcow2', path: `${STORE}/win-2025.qcow2`, format: 'qcow2', virtualSize: GOLDEN_QCOW2.virtualSize, bytes: 300 * MIB, sha256: fakeSha256(u.written ?? '') });
  t.same(await h.store.list(), ['win-2025.qcow2', 'win-2025.qcow2.sha256'], 'the image and its sha256; no temporary file');
  t.equal(await h.store.readText('win-2025.qcow2.sha256'), `${r.sha256}  win-2025.qcow2\n`);
  t.equal(h.importer.progress(), undefined, 'nothing under way afterwards');
  t.match(h.logger.find('golden-imported'), [{ fields: { name: 'win-2025.qcow2', source: 'upload', sha256: r.sha256 } }]);
});

t.test('refused before a byte is written: the name, a taken name, an empty file, no room (disk_reserve counted)', async (t) => {
  const h = setup();
  await h.importer.adopt({ name: 'taken.qcow2', upload: upload(h, 2 * MIB) });
  h.store.free = 1000 * MIB;
  const cases: Array<[string, string, number, string, RegExp]> = [
    ['an unsafe name', '../etc/passwd', MIB, 'invalid-argument', /"\.\.\/etc\/passwd" is not a safe image name/],
    ['a name the store keeps for sidecars', 'x.sha256', MIB, 'invalid-argument', /ends in \.sha256/],
    ['a name taken', 'taken.qcow2', MIB, 'conflict', /an image named "taken\.qcow2" is already in the store/],
    ['an empty file', 'empty.qcow2', 0, 'invalid-argument', /the upload of empty\.qcow2 is empty/],
    ['no room', 'big.qcow2', 950 * MIB, 'disk-full', /has 1000 MiB free; the import needs 950 MiB plus disk_reserve \(100 MiB\)/],
  ];
  for (const [what, name, bytes, code, message] of cases) {
    const early = await refused(h.importer.checkUpload(name, bytes));
    t.match(early, { code, message }, `asked first: ${what}`);
    const u = upload(h, bytes);
    const late = await refused(h.importer.adopt({ name, upload: u }));
    t.match(late, { code, message }, `uploaded anyway: ${what}`);
    t.equal(u.written, undefined, `${what}: nothing written`);
  }
  await h.importer.checkUpload('fits.qcow2', 800 * MIB);
  t.pass('a fitting upload is let through');
  t.same(await h.store.list(), ['taken.qcow2', 'taken.qcow2.sha256'], 'the store is as it was');
});

t.test('one import at a time: an upload, a copy, or the question, while another is under way', async (t) => {
  const h = setup();
  let release = () => undefined as void;
  const held = new Promise<void>((r) => (release = r));
  let arrived = () => undefined as void;
  const onWire = new Promise<void>((r) => (arrived = r));
  const first = h.importer.adopt({
    name: 'first.qcow2',
    upload: upload(h, 2 * MIB, {
      during: async () => {
        arrived();
        await held;
      },
    }),
  });
  await onWire;
  t.match(await refused(h.importer.checkUpload('second.qcow2', MIB)), { code: 'conflict', message: /an import \(first\.qcow2\) is under way; one at a time/ });
  const second = upload(h, MIB);
  t.match(await refused(h.importer.adopt({ name: 'second.qcow2', upload: second })), { code: 'conflict' });
  t.equal(second.written, undefined, 'the second upload is not written');
  h.disks.putImage('/srv/in/third.qcow2');
  t.match(await refused(h.importer.run({ source: '/srv/in/third.qcow2' })), { code: 'conflict' }, 'nor a copy from a file');
  release();
  await first;
  await h.importer.checkUpload('second.qcow2', MIB);
  t.pass('free again once it is done');
});

t.test('refused once it arrived: not a disk, corrupt, a backing chain, cut short; nothing is left in the store', async (t) => {
  const h = setup();
  const cases: Array<[string, Upload, string, RegExp]> = [
    ['a text file', upload(h, 24, { info: { format: 'raw', virtualSize: 24, actualSize: 4096 } }), 'golden-image-invalid', /golden image notes\.qcow2 is 24 bytes, not a whole number of 512-byte sectors/],
    ['a tiny raw file', upload(h, 4096, { info: { format: 'raw', virtualSize: 4096, actualSize: 4096 } }), 'golden-image-invalid', /is 4096 bytes: too small for a disk/],
    ['another format', upload(h, 2 * MIB, { info: { format: 'vmdk', virtualSize: 2 ** 30, actualSize: MIB } }), 'golden-image-invalid', /is vmdk, not qcow2 or raw/],
    ['a corrupt qcow2', upload(h, 2 * MIB, { check: { corruptions: 3, leaks: 0 } }), 'golden-image-invalid', /is corrupt: qemu-img check found 3 corruption/],
    ['a backing chain', upload(h, 2 * MIB, { info: { ...GOLDEN_QCOW2, backingFile: '/etc/shadow' } }), 'golden-image-invalid', /has a backing file \(\/etc\/shadow\)/],
    ['fewer bytes than announced', upload(h, 2 * MIB, { arrive: MIB }), 'disk-failed', /was cut short: 1048576 of 2097152 bytes arrived/],
  ];
  for (const [what, u, code, message] of cases) {
    const err = await refused(h.importer.adopt({ name: 'notes.qcow2', upload: u }));
    t.match(err, { code, message }, what);
    t.same(await h.store.list(), [], `${what}: nothing left in the store`);
  }
  const broken: IncomingStream = {
    bytes: 2 * MIB,
    writeTo: async (path) => {
      h.disks.putFile(path);
      throw new Error('the connection ended');
    },
  };
  t.match(await refused(h.importer.adopt({ name: 'cut.qcow2', upload: broken })), { code: 'disk-failed', message: /the connection ended/ }, 'a connection that breaks off');
  t.same(await h.store.list(), [], 'its partial file is removed at once');
  t.equal(h.logger.find('golden-import-refused').length, cases.length + 1, 'every refusal is logged once');
});

t.test('stopped at shutdown: the upload is removed, saying why', async (t) => {
  const h = setup();
  const u = upload(h, 2 * MIB, { during: async () => h.importer.stop() });
  const err = await refused(h.importer.adopt({ name: 'late.qcow2', upload: u }));
  t.match(err, { code: 'disk-failed', message: 'the upload was stopped (the supervisor is shutting down)' });
  t.same(await h.store.list(), [], 'nothing left');
});
