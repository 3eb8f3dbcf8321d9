// Golden images with real qemu-img, libvirt and TCG VMs: imports refused for
// what is wrong with them, a switch while a station holds a session (the session
// stays on the old image, whose file goes once nothing uses it), rollback by
// hand, the pool going back by itself when clones of a new image never come up,
// and an import killed half-way leaving nothing behind.
import { copyFile, open, readdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { SupervisorBus } from '../helpers/bus.js';
import { BUILD, makeTestRoot, run, TABULACTL, TEST_PREFIX, testConfig, waitFor, writeConfig } from '../helpers/env.js';
import { startViewer, type Viewer } from '../helpers/spice-client.js';
import { makeStationLan, removeStationWorld, stationsSection, type Station } from '../helpers/station-lan.js';
import { status, SupervisorProcess, tabulactl, waitForClean } from '../helpers/supervisor-process.js';
import { connectV1, fields, type V1Client } from '../helpers/v1-client.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-gold`;
const PREFIX = `tabula-${POOL}-`;
/** Long enough for a good clone on a busy 2-core host, short enough to fail a bad one thrice in a few minutes. */
const BOOT_TIMEOUT = 30;
const root = await makeTestRoot('gold');
const lan = await makeStationLan('gld', 1);
const [A] = lan.stations as [Station];
const STORE = join(root.dir, 'state/images');
const STORAGE = join(root.dir, 'state/pools', POOL);
const ARTIFACTS = join(BUILD, 'test-reports', 'golden-switch');
const configText = (extra = '') =>
  testConfig(root, [{ name: POOL, size: 2, spicePortBase: 5960, bootTimeout: BOOT_TIMEOUT }], extra).replace('[[pool]]', `${stationsSection(lan, 10)}\n\n[[pool]]`);
const config = await writeConfig(root, configText('disk_reserve = 64'));
let supervisor = new SupervisorProcess(config);
const bus = await SupervisorBus.open();
const clients: V1Client[] = [];
const viewers: Viewer[] = [];

t.teardown(async () => {
  await Promise.all(clients.map((c) => c.kill()));
  await Promise.all(viewers.map((v) => v.close()));
  bus.close();
  await supervisor.stop();
  await removeDomains(PREFIX);
  await root.cleanup();
  await removeStationWorld(lan);
});

const element = (name: string) => name.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
const POOL_PATH = `/org/tabula/Supervisor1/pool/${element(POOL)}`;
const store = (name: string) => join(STORE, name);
const exists = (path: string) => access(path).then(() => true, () => false);

async function ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return tabulactl(...args);
}

/** The pool's image properties on the bus. */
async function poolImages(): Promise<{ golden: string; previous: string; confirmed: boolean; healthy: boolean; reason: string }> {
  const p = await bus.props(POOL_PATH, 'org.tabula.Supervisor1.Pool');
  return { golden: p['GoldenImage'] as string, previous: p['PreviousGoldenImage'] as string, confirmed: p['GoldenImageConfirmed'] as boolean, healthy: p['Healthy'] as boolean, reason: p['HealthReason'] as string };
}

/** What an overlay's qcow2 header names as its backing file: the truth of which image a VM runs on. */
async function backing(vm: string): Promise<string> {
  const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', join(STORAGE, `${vm}.qcow2`)]);
  return (JSON.parse(stdout) as { 'backing-filename'?: string })['backing-filename'] ?? '';
}

/** Waits until the pool holds `n` clean VMs whose overlays are all backed by `image`. */
async function waitForImage(image: string, n = 2, timeoutMs = 240_000): Promise<void> {
  await waitFor(
    `${n} clean VMs backed by ${image}`,
    async () => {
      const s = await waitForClean(POOL, n, timeoutMs);
      const vms = s.pools.find((p) => p.name === POOL)?.vms ?? [];
      const backs = await Promise.all(vms.map((vm) => backing(vm.name).catch(() => '')));
      return backs.every((b) => b === image) ? true : undefined;
    },
    timeoutMs,
    1_000,
  );
}

/** Waits until `vm` is clean and backed by `image`. */
async function waitForVm(vm: string, image: string): Promise<void> {
  await waitFor(
    `${vm} clean on ${image}`,
    async () => {
      const state = (await status()).pools.find((p) => p.name === POOL)?.vms.find((v) => v.name === vm)?.state;
      return state === 'clean' && (await backing(vm).catch(() => '')) === image ? true : undefined;
    },
    240_000,
    1_000,
  );
}

interface ImageJson {
  name: string;
  path: string;
  stored: boolean;
  format?: string;
  kernel?: string;
  currentOf: string[];
  previousOf: string[];
  liveVms: number;
}

async function listImages(): Promise<ImageJson[]> {
  const r = await ctl('image', 'list', '--json');
  if (r.code !== 0) throw new Error(`tabulactl image list failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ImageJson[];
}

/** A copy of the test golden under `name` outside the store, to import. */
async function goldenCopy(name: string): Promise<string> {
  const path = join(root.dir, name);
  await copyFile(root.golden, path);
  return path;
}

t.test('imports that are refused say why, and leave nothing in the store', async (t) => {
  await waitForClean(POOL, 2);
  const text = join(root.dir, 'notes.txt');
  await writeFile(text, 'hello\n');
  const top = join(root.dir, 'top.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', root.golden, top]);
  const corrupt = await goldenCopy('corrupt.qcow2');
  // An L1 entry pointing at an unaligned offset past the end: qemu-img info still reads it, check does not pass it.
  const fh = await open(corrupt, 'r+');
  try {
    const header = Buffer.alloc(48);
    await fh.read(header, 0, 48, 0);
    const entry = Buffer.alloc(8);
    entry.writeBigUInt64BE(0x8000000123456789n);
    await fh.write(entry, 0, 8, Number(header.readBigUInt64BE(40)));
  } finally {
    await fh.close();
  }
  const cases: Array<[string, string[], number, RegExp]> = [
    ['a text file', ['image', 'import', text], 2, /notes\.txt is 512 bytes: too small for a disk/],
    ['a qcow2 with a backing file', ['image', 'import', top], 2, /top\.qcow2 has a backing file \(.*golden\.qcow2\); flatten it first/],
    ['a corrupt qcow2', ['image', 'import', corrupt], 2, /corrupt\.qcow2 is corrupt: qemu-img check found \d+ corruption/],
    ['no such file', ['image', 'import', join(root.dir, 'nothing.qcow2')], 4, /nothing\.qcow2 does not exist/],
    ['an unsafe name', ['image', 'import', root.golden, '--name', '../../etc/x'], 2, /is not a safe image name/],
  ];
  for (const [what, args, code, message] of cases) {
    const r = await ctl(...args);
    t.equal(r.code, code, `${what}: exit ${code}`);
    t.match(r.stderr, message, `${what}: ${r.stderr.trim()}`);
  }
  const direct = await bus.call('/org/tabula/Supervisor1', 'org.tabula.Supervisor1', 'ImportImage', 'ssss', [corrupt, 'c.qcow2', '', '']);
  t.equal(direct.error, 'org.tabula.Supervisor1.Error.GoldenImageInvalid', 'over D-Bus the error names the code');

  // Not enough room: the image plus a disk_reserve larger than the disk.
  await writeFile(config, configText('disk_reserve = 1048576') + '\n');
  t.equal((await ctl('reload')).code, 0);
  const full = await ctl('image', 'import', root.golden, '--name', 'full.qcow2');
  t.equal(full.code, 1, 'no room: exit 1');
  t.match(full.stderr, /disk full: .* MiB free; the import needs 1 MiB plus disk_reserve \(1048576 MiB\)/, full.stderr.trim());
  await writeFile(config, configText('disk_reserve = 64') + '\n');
  t.equal((await ctl('reload')).code, 0);

  t.same(await readdir(STORE).catch(() => []), [], 'nothing was left in the store, not even a temporary file');
  t.ok(supervisor.lines.filter((l) => l.includes('event=golden-import-refused')).length >= cases.length + 2, 'each refusal is in the journal');
});

t.test('import: copies land in the store; list shows them and the config file\'s image in use', async (t) => {
  for (const n of ['v1', 'v2', 'v3']) {
    const r = await ctl('--json', 'image', 'import', await goldenCopy(`${n}.qcow2`));
    t.equal(r.code, 0, `${n} imported: ${r.stderr.trim()}`);
    const imported = JSON.parse(r.stdout) as { path: string; format: string; sha256: string };
    t.match(imported, { path: store(`${n}.qcow2`), format: 'qcow2', sha256: /^[0-9a-f]{64}$/ });
  }
  const again = await ctl('image', 'import', await goldenCopy('v1.qcow2'));
  t.equal(again.code, 1, 'a name already in the store is refused');
  t.match(again.stderr, /an image named "v1\.qcow2" is already in the store/);
  const { stdout: info } = await run('qemu-img', ['info', '--output=json', store('v1.qcow2')]);
  t.match(JSON.parse(info), { format: 'qcow2', 'virtual-size': 64 * 2 ** 20 }, 'the copy is a sound qcow2');

  const list = await listImages();
  t.match(
    list.find((i) => i.path === root.golden),
    { stored: false, currentOf: [POOL], previousOf: [], liveVms: 2 },
    "the config file's image, used by the pool, outside the store",
  );
  for (const n of ['v1', 'v2', 'v3']) t.match(list.find((i) => i.name === `${n}.qcow2`), { stored: true, format: 'qcow2', currentOf: [], liveVms: 0 }, `${n} listed`);

  const { stdout: group } = await run('getent', ['group', 'tabula']);
  const gid = group.split(':')[2] as string;
  const asReader = (...args: string[]) =>
    run('setpriv', ['--reuid=65534', '--regid=65534', `--groups=${gid}`, process.execPath, TABULACTL, ...args]).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
  t.equal(await asReader('image', 'list'), 0, 'group tabula may list images');
  t.equal(await asReader('image', 'use', POOL, 'v1.qcow2'), 5, 'but not switch a pool (exit 5)');
});

let session: { c: V1Client; id: string; vm: string } | undefined;

t.test('switch while a station holds a session: the session stays on the old image, whose file goes once unused', async (t) => {
  t.equal((await ctl('image', 'use', POOL, 'v1.qcow2')).code, 0);
  await waitForImage(store('v1.qcow2'));
  t.match(await poolImages(), { golden: store('v1.qcow2'), previous: root.golden }, 'GoldenImage and PreviousGoldenImage on the bus');
  await waitFor('switch confirmed', async () => ((await poolImages()).confirmed ? true : undefined), 60_000);
  t.pass('two clones of v1 came up: confirmed');

  await supervisor.waitForLine(/event=signal-port-open/, 30_000);
  const c = await connectV1(A, { host: lan.address, first: 'TABULA/1 HELLO station=kiosk-gold' });
  clients.push(c);
  await c.next(/^WELCOME /, 5_000);
  c.send(`REQUEST pool=${POOL}`);
  const ready = fields(await c.next(/^READY /, 30_000));
  viewers.push(await startViewer({ artifactsDir: ARTIFACTS, netns: A.netns, host: ready['host'] ?? lan.address, port: Number(ready['port']), password: ready['ticket'] ?? '', name: 'gold' }));
  await c.next(/^CONNECTED /, 60_000);
  session = { c, id: ready['session'] ?? '', vm: ready['vm'] ?? '' };
  const other = session.vm.endsWith('-0') ? `${PREFIX}1` : `${PREFIX}0`;

  t.equal((await ctl('image', 'use', POOL, 'v2.qcow2')).code, 0, 'switch to v2 with the session under way');
  await waitForVm(other, store('v2.qcow2'));
  t.pass('the clean VM was replaced by a clone of v2');
  t.equal(await backing(session.vm), store('v1.qcow2'), "the session's VM is still backed by v1");
  t.notOk(c.lines.some((l) => l.startsWith('ENDED')), 'and the session goes on');

  t.equal((await ctl('image', 'use', POOL, 'v3.qcow2')).code, 0, 'switch again, to v3: v1 is neither current nor previous now');
  await waitForVm(other, store('v3.qcow2'));
  t.ok(await exists(store('v1.qcow2')), 'v1 stays while the session runs on it');
  t.match((await listImages()).find((i) => i.name === 'v1.qcow2'), { currentOf: [], previousOf: [], liveVms: 1 });

  const from = supervisor.mark();
  t.equal((await ctl('end-session', session.id)).code, 0);
  await c.next(/^ENDED /, 30_000);
  await supervisor.waitForLine(new RegExp(`event=golden-image-removed image=${store('v1.qcow2').replace(/[.]/g, '\\.')}`), 60_000, from);
  t.notOk(await exists(store('v1.qcow2')), 'once the session ended, v1 is deleted');
  t.ok(await exists(store('v2.qcow2')), 'v2, the previous image, stays');
  t.ok(await exists(root.golden), "the config file's image stays");
  await waitForImage(store('v3.qcow2'));
  t.pass('both VMs are clones of v3');
});

t.test('rollback: back to the previous image', async (t) => {
  t.equal((await ctl('image', 'rollback', POOL)).code, 0);
  await waitForImage(store('v2.qcow2'));
  t.match(await poolImages(), { golden: store('v2.qcow2'), previous: store('v3.qcow2'), confirmed: true });
  t.match(supervisor.log(), new RegExp(`event=golden-rollback pool=${POOL} from=\\S*v3\\.qcow2 to=\\S*v2\\.qcow2 trigger=admin`));
});

t.test('health-gated: clones of an image that never come up roll the pool back by itself', async (t) => {
  // A sound disk with its own kernel and no initrd: the kernel finds no root file system and
  // panics, so the guest agent never reports up.
  const bad = await ctl('image', 'import', await goldenCopy('bad.qcow2'), '--kernel', root.kernel);
  t.equal(bad.code, 0, bad.stderr);
  const heard = bus.signals.length;
  const from = supervisor.mark();
  t.equal((await ctl('image', 'use', POOL, 'bad.qcow2')).code, 0);
  await waitFor('v3 deleted', async () => ((await exists(store('v3.qcow2'))) ? undefined : true), 60_000);
  t.pass('v3, neither current nor previous now and backing nothing, is deleted');

  const rollback = await supervisor.waitForLine(/event=golden-rollback /, (BOOT_TIMEOUT + 30) * 3 * 1000, from);
  t.match(rollback, /trigger=auto/);
  t.match(rollback, /reason="golden image rolled back to \S*v2\.qcow2: 3 clones of \S*bad\.qcow2 in a row failed to come up \(last: the guest did not report up in time\)"/);
  t.equal(supervisor.lines.slice(from).filter((l) => /event=vm-destroyed .*reason=boot-timeout/.test(l)).length, 3, 'after three clones timed out');
  t.match(await poolImages(), { golden: store('v2.qcow2'), previous: store('bad.qcow2'), confirmed: true }, 'the pool clones from v2 again');
  const health = await waitFor('PoolHealthChanged naming the rollback', async () => bus.heard('PoolHealthChanged', heard).find((s) => /rolled back/.test(String(s.body[2]))), 30_000);
  t.match(health.body, [POOL, false, /^golden image rolled back to .*v2\.qcow2: 3 clones of .*bad\.qcow2/], 'PoolHealthChanged says so');
  await waitForImage(store('v2.qcow2'));
  await waitFor('healthy again', async () => ((await poolImages()).healthy ? true : undefined), 60_000);
  t.pass('the pool is whole and healthy again on v2');

  const list = await listImages();
  t.match(list.find((i) => i.name === 'bad.qcow2'), { previousOf: [POOL], kernel: store('bad.qcow2.kernel'), liveVms: 0 }, 'the image that failed is kept as previous, with its kernel');
  t.match(list.find((i) => i.name === 'v2.qcow2'), { currentOf: [POOL], liveVms: 2 });
  t.same(list.filter((i) => i.stored).map((i) => i.name).sort(), ['bad.qcow2', 'v2.qcow2'], 'nothing else is left in the store');
});

t.test('an import killed half-way leaves nothing: the next start removes its copy', async (t) => {
  const big = join(root.dir, 'big.raw');
  await run('truncate', ['-s', '2G', big]);
  const from = supervisor.mark();
  const importing = ctl('image', 'import', big);
  await supervisor.waitForLine(/event=golden-import-started name=big\.raw /, 30_000, from);
  supervisor.signal('SIGKILL');
  await supervisor.exited;
  t.not((await importing).code, 0, 'the import did not finish');
  t.ok((await readdir(STORE)).includes('.big.raw.importing'), 'the copy was cut short under its temporary name');
  t.notOk((await listImages().catch(() => [])).some((i) => i.name === 'big.raw'), 'never as an image');

  supervisor = new SupervisorProcess(config);
  await supervisor.waitForLine(/event=golden-import-leftover-removed file=\S*\.big\.raw\.importing/, 60_000);
  t.same((await readdir(STORE)).sort(), ['bad.qcow2', 'bad.qcow2.kernel', 'bad.qcow2.sha256', 'v2.qcow2', 'v2.qcow2.sha256'], 'the next start removed it; the images (and their checksums) are as they were');
  await waitForImage(store('v2.qcow2'));
  t.match(await poolImages(), { golden: store('v2.qcow2'), previous: store('bad.qcow2') }, 'the switch outlived the crash');
});
