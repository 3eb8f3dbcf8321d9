// Host resources: a pool on a full disk, or on a host whose free memory is
// under the reserve, clones nothing, says why in its status, keeps running
// (no crash loop) and fills by itself once the cause is gone.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { makeTestRoot, run, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { status, SupervisorProcess, waitForClean } from '../helpers/supervisor-process.js';
import { listDomains, removeDomains } from '../helpers/virsh.js';

const DISK_POOL = `${TEST_PREFIX}-full`;
const MEM_POOL = `${TEST_PREFIX}-mem`;
const root = await makeTestRoot('res');
const small = join(root.dir, 'small');
await mkdir(small, { mode: 0o711 });
// A real filesystem of 48 MiB: filled for real, freed for real.
await run('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0711', `${TEST_PREFIX}-res`, small]);
let supervisor: SupervisorProcess | undefined;

t.teardown(async () => {
  await supervisor?.stop();
  await removeDomains(`tabula-${DISK_POOL}-`);
  await removeDomains(`tabula-${MEM_POOL}-`);
  await run('umount', [small]).catch(() => undefined);
  await root.cleanup();
});

async function pool(name: string) {
  return (await status()).pools.find((p) => p.name === name);
}

t.test('disk full: no clone under disk_reserve; the pool says so and fills once space is freed', async (t) => {
  const filler = join(small, 'operator-backup.img');
  await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=40', 'status=none']);
  const config = await writeConfig(
    root,
    testConfig(root, [{ name: DISK_POOL, size: 1, spicePortBase: 5970, extra: [`storage_dir = "${small}/pool"`] }], 'disk_reserve = 16'),
    'disk.toml',
  );
  supervisor = new SupervisorProcess(config);
  const waiting = await supervisor.waitForLine(/event=pool-waiting-for-resources pool=it-full /, 30_000);
  t.match(waiting, /disk full: \d+ MiB free for .*\/small\/pool, under the 16 MiB reserve/, 'the log says why');
  const p = await waitFor('status says it', async () => ((await pool(DISK_POOL))?.healthy === false ? pool(DISK_POOL) : undefined), 15_000);
  t.match(p?.healthReason, /^disk full: /, 'tabulactl status says why');
  await new Promise((r) => setTimeout(r, 3_000));
  t.same(await listDomains(`tabula-${DISK_POOL}-`), [], 'no VM was defined');
  t.equal(supervisor.lines.filter((l) => l.includes('event=pool-waiting-for-resources')).length, 1, 'said once, not every round');

  await rm(filler);
  await waitForClean(DISK_POOL, 1, 60_000);
  t.pass('space freed: the pool fills by itself');
  t.ok((await pool(DISK_POOL))?.healthy, 'and is healthy');
  t.ok(supervisor.lines.some((l) => l.includes('event=pool-resources-available pool=it-full')));
  t.equal(supervisor.lines.filter((l) => l.includes('event=supervisor-starting')).length, 1, 'one supervisor start: no crash loop');
  await supervisor.stop();
  await removeDomains(`tabula-${DISK_POOL}-`);
});

t.test('memory: no VM that would take free memory under memory_reserve; a reload with a lower reserve lets it start', async (t) => {
  const tooMuch = testConfig(root, [{ name: MEM_POOL, size: 1, spicePortBase: 5975 }], 'memory_reserve = 1048576');
  const config = await writeConfig(root, tooMuch, 'mem.toml');
  supervisor = new SupervisorProcess(config);
  const waiting = await supervisor.waitForLine(/event=pool-waiting-for-resources pool=it-mem /, 30_000);
  t.match(waiting, /host memory low: \d+ MiB available, a VM needs 192 MiB over the 1048576 MiB reserve/, 'the log says why');
  const p = await waitFor('status says it', async () => ((await pool(MEM_POOL))?.healthy === false ? pool(MEM_POOL) : undefined), 15_000);
  t.match(p?.healthReason, /^host memory low: /, 'tabulactl status says why');
  t.same(await listDomains(`tabula-${MEM_POOL}-`), [], 'no VM was defined');

  await writeConfig(root, tooMuch.replace('memory_reserve = 1048576', 'memory_reserve = 1024'), 'mem.toml');
  supervisor.signal('SIGHUP');
  await waitForClean(MEM_POOL, 1, 60_000);
  t.pass('with room over the reserve the pool fills');
});
