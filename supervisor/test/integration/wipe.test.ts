// The emergency wipe (the seed's vm_clear.sh), end to end on real libvirt + QEMU:
// `tabulactl wipe --yes` and a start with start_mode = "wipe" each leave exactly
// a fresh pool, with nothing of before in libvirt or in the storage directory.
// A wipe removes every Tabula domain on the host's libvirtd, whatever its pool:
// this file must not run beside another test that has VMs of its own.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeTestRoot, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { guestBoots } from '../helpers/guest.js';
import { status, SupervisorProcess, tabulactl, waitForClean } from '../helpers/supervisor-process.js';
import { listDomains, removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-wipe`;
const PREFIX = `tabula-${POOL}-`;
const ORPHAN = `${PREFIX}7.qcow2`;
const root = await makeTestRoot('wipe');
const storage = join(root.dir, 'state/pools', POOL);
const pools = [{ name: POOL, size: 2, spicePortBase: 5990 }];
const config = await writeConfig(root, testConfig(root, pools));
let supervisor = new SupervisorProcess(config);

t.teardown(async () => {
  await supervisor.stop();
  const leaked = await removeDomains(PREFIX);
  await root.cleanup();
  if (leaked.length > 0) console.log(`# removed test domains: ${leaked.join(', ')}`);
});

/** The files of a pool of two and nothing else. */
const POOL_FILES = [0, 1].flatMap((n) => [`${PREFIX}${n}.console.log`, `${PREFIX}${n}.qcow2`]).sort();

async function uuids(): Promise<string[]> {
  return (await listDomains(PREFIX)).map((d) => d.uuid).sort();
}

/** Waits for two clean, running VMs that are none of `old`: libvirt and the supervisor agree. */
async function freshPool(old: readonly string[]): Promise<string[]> {
  return waitFor(
    'a fresh pool of 2 clean VMs',
    async () => {
      const p = (await status()).pools.find((x) => x.name === POOL);
      const vms = p?.vms ?? [];
      const fresh = vms.length === 2 && vms.every((vm) => vm.state === 'clean' && vm.active && !old.includes(vm.uuid));
      if (!fresh) return undefined;
      const now = await uuids();
      return now.join() === vms.map((vm) => vm.uuid).sort().join() ? now : undefined;
    },
    180_000,
    500,
  );
}

/** Each VM's console log is its own: one boot, on a disk that had never been written. */
async function bootedOnceFromScratch(t: Test): Promise<void> {
  for (const n of [0, 1]) {
    const boots = await guestBoots(join(storage, `${PREFIX}${n}.console.log`));
    t.equal(boots.length, 1, `${PREFIX}${n}: one boot in its console log`);
    t.equal(boots[0]?.previousMarker, 'none', `${PREFIX}${n}: a fresh disk`);
  }
}

t.test('tabulactl wipe: refused without --yes; with it, exactly a fresh pool is left', async (t) => {
  await waitForClean(POOL, 2);
  const before = await uuids();
  t.equal(before.length, 2, 'two VMs to begin with');

  const refused = await tabulactl('wipe');
  t.equal(refused.code, 2, 'without --yes: exit 2');
  t.match(refused.stderr, /destroys every Tabula VM/);
  t.match(refused.stderr, /deletes every disk/);
  t.match(refused.stderr, /ends every session/);
  t.match(refused.stderr, /rebuilt/);
  t.match(refused.stderr, /--yes/);
  t.same(await uuids(), before, 'and nothing changed');
  t.notMatch(supervisor.log(), /event=wipe-started/, 'the supervisor was not even asked');

  await writeFile(join(storage, ORPHAN), 'x');
  const mark = supervisor.mark();
  const r = await tabulactl('wipe', '--yes');
  t.equal(r.code, 0, r.stderr);
  // The orphan may already have gone in a round before the wipe: 4 or 5 files.
  t.match(r.stdout, /^wiped: 2 VMs, [45] files, 0 sessions ended\n$/);
  await supervisor.waitForLine(/event=wipe-finished reason=admin domains=2 files=[45] sessions=0/, 10_000, mark);
  t.match(supervisor.lines.slice(mark).join('\n'), /<5>event=wipe-started reason=admin domains=2/);

  const after = await freshPool(before);
  t.equal(after.length, 2, 'two new VMs');
  t.same((await readdir(storage)).sort(), POOL_FILES, 'the storage directory holds the new VMs\' files and nothing else');
  await bootedOnceFromScratch(t);
});

t.test('start_mode = "wipe": a restart removes what was left running and builds the pool afresh', async (t) => {
  await waitForClean(POOL, 2);
  const before = await uuids();
  await supervisor.stop();
  t.equal((await supervisor.exited).code, 0, 'SIGTERM is a clean exit');
  const left = await listDomains(PREFIX);
  t.ok(left.length === 2 && left.every((d) => d.running), 'the VMs were left running');

  await writeFile(join(storage, ORPHAN), 'x');
  const wipeConfig = await writeConfig(root, testConfig(root, pools, 'start_mode = "wipe"'), 'wipe.toml');
  supervisor = new SupervisorProcess(wipeConfig);
  await supervisor.waitForLine(/event=wipe-finished/);
  t.match(supervisor.log(), /<5>event=wipe-finished reason=start domains=2 files=5 sessions=0/, 'both VMs, their 4 files and the orphan');
  const finished = supervisor.lines.findIndex((l) => /event=wipe-finished/.test(l));
  const firstDefine = supervisor.lines.findIndex((l) => /event=vm-defined /.test(l));
  t.ok(firstDefine === -1 || firstDefine > finished, 'nothing was adopted or defined before the wipe was done');
  t.notMatch(supervisor.log(), /event=vm-(destroyed|undefined) /, 'the old VMs went by the wipe, not by a round');

  const after = await freshPool(before);
  t.equal(after.length, 2, 'two new VMs');
  t.same((await readdir(storage)).sort(), POOL_FILES, 'the storage directory holds the new VMs\' files and nothing else');
  await bootedOnceFromScratch(t);
  await supervisor.stop();
  t.equal((await supervisor.exited).code, 0);
});
