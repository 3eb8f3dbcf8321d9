// What a supervisor killed at any moment leaves behind, finished or undone at
// start-up from libvirt and the storage directory alone; and a clone that never
// comes up is retried with backoff until the pool is declared unhealthy.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { domainSpec } from '../../src/app/executor.js';
import { parseConfig } from '../../src/config/config.js';
import { renderDomainXml } from '../../src/render/domain-xml.js';
import type { VmRecord, VmState } from '../../src/domain/vm.js';
import { makeTestRoot, run, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { guestBoots } from '../helpers/guest.js';
import { status, SupervisorProcess, waitForClean } from '../helpers/supervisor-process.js';
import { removeDomains, virsh } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-rec`;
const PREFIX = `tabula-${POOL}-`;
const root = await makeTestRoot('rec');
const configText = testConfig(root, [{ name: POOL, size: 3, spicePortBase: 5980 }]);
const configPath = await writeConfig(root, configText);
const config = parseConfig(configText, configPath);
const pool = config.pools[0]!;
let supervisor: SupervisorProcess | undefined;

t.teardown(async () => {
  await supervisor?.stop();
  await removeDomains(`tabula-${TEST_PREFIX}-rec`);
  await root.cleanup();
});

/** Defines a domain exactly as the supervisor would, in a given state. */
async function craft(slot: number, state: VmState): Promise<string> {
  const name = `${PREFIX}${slot}`;
  const now = Date.now();
  const record: VmRecord = { pool: POOL, slot, state, createdAt: now - 60_000, stateSince: now - 30_000, ...(state === 'booting' ? { bootDeadline: now + 600_000 } : {}) };
  const xmlPath = join(root.dir, `${name}.xml`);
  await writeFile(xmlPath, renderDomainXml(domainSpec(config, pool, name, record, 'crafted-password')));
  await virsh('define', xmlPath);
  return (await virsh('domuuid', name)).trim();
}

async function overlay(slot: number): Promise<void> {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', root.golden, join(pool.storageDir, `${PREFIX}${slot}.qcow2`)]);
}

t.test('half-done steps are finished or undone at start-up; orphans are deleted; foreign files kept', async (t) => {
  await run('mkdir', ['-p', '-m', '0711', pool.storageDir]);
  // slot 0: defined, its disk never made (killed during clone-disk).
  const cloning = await craft(0, 'cloning');
  // slot 1: was booting when the supervisor died, and then the VM died too.
  const deadBooting = await craft(1, 'booting');
  await overlay(1);
  // slot 2: marked dirty and still running (killed between the two halves of destroy-vm).
  const dirty = await craft(2, 'dirty');
  await overlay(2);
  await virsh('start', `${PREFIX}2`);
  // Orphans: the overlay of a slot the pool no longer has, a half-written clone, a console log.
  for (const f of [`${PREFIX}7.qcow2`, `${PREFIX}0.qcow2.tmp`, `${PREFIX}9.console.log`, 'README.operator']) {
    await writeFile(join(pool.storageDir, f), 'x');
  }

  supervisor = new SupervisorProcess(configPath);
  const s = await waitForClean(POOL, 3);
  const vms = new Map(s.pools[0]!.vms.map((vm) => [vm.slot, vm]));
  t.equal(vms.get(0)?.uuid, cloning, 'slot 0: the half-made clone was finished (same domain)');
  t.not(vms.get(1)?.uuid, deadBooting, 'slot 1: the VM that died while booting was replaced');
  t.not(vms.get(2)?.uuid, dirty, 'slot 2: the dirty VM was destroyed and replaced');
  t.match(supervisor.log(), new RegExp(`event=vm-undefined .*vm=${PREFIX}1 reason=died-while-booting`));
  t.match(supervisor.log(), new RegExp(`event=vm-destroyed .*vm=${PREFIX}2 reason=dirty`));
  const boots = await guestBoots(join(pool.storageDir, `${PREFIX}2.console.log`));
  t.equal(boots.length, 1, 'slot 2 console log is the new VM\'s alone');
  t.equal(boots[0]?.previousMarker, 'none', 'the replacement of the dirty VM started from a clean disk');
  const files = (await readdir(pool.storageDir)).sort();
  t.same(
    files,
    ['README.operator', ...[0, 1, 2].flatMap((n) => [`${PREFIX}${n}.console.log`, `${PREFIX}${n}.qcow2`])].sort(),
    'orphans deleted; a file Tabula did not create is left alone',
  );
  await supervisor.stop();
});

t.test('a clone that never comes up is destroyed and retried with backoff, then the pool is unhealthy', async (t) => {
  const broken = join(root.dir, 'broken-initrd.img');
  await writeFile(broken, 'not an initramfs');
  const brokenConfig = await writeConfig(
    root,
    testConfig(root, [{ name: `${POOL}-never`, size: 1, spicePortBase: 5985, bootTimeout: 3 }]).replace(root.initrd, broken),
    'broken.toml',
  );
  supervisor = new SupervisorProcess(brokenConfig);
  const s = await waitFor(
    'pool unhealthy',
    async () => {
      const st = await status();
      return st.pools[0]?.healthy === false ? st : undefined;
    },
    120_000,
    500,
  );
  t.match(s.pools[0]?.healthReason, /3 clones in a row failed to come up \(last: the guest did not report up in time\)/);
  const timeouts = supervisor.lines.filter((l) => /event=vm-destroyed .*reason=boot-timeout/.test(l));
  t.ok(timeouts.length >= 3, `each clone was destroyed after its boot timeout (${timeouts.length})`);
  t.match(supervisor.log(), /<3>event=pool-unhealthy pool=it-rec-never/);
  // Backoff: after the n-th failure, the next clone waits at least 2 s × 2^(n-1).
  const at = (pattern: RegExp) => supervisor!.lines.flatMap((l, i) => (pattern.test(l) ? [supervisor!.times[i]!] : []));
  const defined = at(/event=vm-defined /);
  const destroyed = at(/event=vm-destroyed .*reason=boot-timeout/);
  t.ok(defined.length >= 3, 'defined at least three times');
  t.ok(defined[1]! - destroyed[0]! >= 1900, `second try waited ${defined[1]! - destroyed[0]!} ms (≥ 2 s)`);
  t.ok(defined[2]! - destroyed[1]! >= 3900, `third try waited ${defined[2]! - destroyed[1]!} ms (≥ 4 s)`);
  await supervisor.stop();
});
