// The spine, end to end on real libvirt + QEMU: a pool of 2 linked clones
// comes up clean, heals itself, recycles on demand, and survives SIGKILL.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import dbus from 'dbus-next';
import { makeTestRoot, sha256, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { guestBoots, readMarker } from '../helpers/guest.js';
import { status, SupervisorProcess, tabulactl, waitForClean } from '../helpers/supervisor-process.js';
import { listDomains, qemuPid, removeDomains, virsh } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-life`;
const PREFIX = `tabula-${POOL}-`;
const root = await makeTestRoot('life');
const storage = join(root.dir, 'state/pools', POOL);
const config = await writeConfig(root, testConfig(root, [{ name: POOL, size: 2, spicePortBase: 5940 }]));
const goldenBefore = await sha256(root.golden);
let supervisor = new SupervisorProcess(config);

t.teardown(async () => {
  await supervisor.stop();
  const leaked = await removeDomains(PREFIX);
  await root.cleanup();
  if (leaked.length > 0) console.log(`# removed test domains: ${leaked.join(', ')}`);
});

async function getAll(bus: dbus.MessageBus, path: string, iface: string): Promise<Record<string, unknown>> {
  const obj = await bus.getProxyObject('org.tabula.Supervisor1', path);
  const props = obj.getInterface('org.freedesktop.DBus.Properties');
  const getAllProps = props['GetAll'] as (i: string) => Promise<Record<string, dbus.Variant>>;
  const all = await getAllProps(iface);
  return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value]));
}

t.test('a pool of 2 comes up to 2 clean VMs, and tabulactl, D-Bus and virsh agree', async (t) => {
  const s = await waitForClean(POOL, 2);
  const pool = s.pools.find((p) => p.name === POOL);
  t.ok(pool?.healthy, 'pool healthy');
  const doms = await listDomains(PREFIX);
  t.same(doms.map((d) => d.name).sort(), [`${PREFIX}0`, `${PREFIX}1`], 'virsh lists exactly the two slots');
  t.ok(doms.every((d) => d.running), 'both running');
  t.same(
    pool?.vms.map((vm) => [vm.name, vm.uuid, vm.active]).sort(),
    doms.map((d) => [d.name, d.uuid, d.running]).sort(),
    'tabulactl status --json matches virsh (names, UUIDs, running)',
  );
  t.same(pool?.vms.map((vm) => vm.spicePort).sort(), [5940, 5941], 'Spice ports are deterministic per slot');

  const bus = dbus.systemBus();
  try {
    const root = await getAll(bus, '/org/tabula/Supervisor1', 'org.tabula.Supervisor1');
    t.equal(root['State'], 'ready');
    const poolPath = (root['Pools'] as string[]).find((p) => p.endsWith(POOL.replace(/-/g, '_2d')));
    t.ok(poolPath, 'the pool has an object');
    const props = await getAll(bus, poolPath as string, 'org.tabula.Supervisor1.Pool');
    t.equal(props['Size'], 2);
    t.equal((props['Counts'] as Record<string, number>)['clean'], 2, 'D-Bus Counts says 2 clean');
    const vmUuids = await Promise.all((props['Vms'] as string[]).map(async (p) => (await getAll(bus, p, 'org.tabula.Supervisor1.Vm'))['Uuid']));
    t.same(vmUuids.sort(), doms.map((d) => d.uuid).sort(), 'D-Bus VM objects carry the same UUIDs as virsh');
  } finally {
    bus.disconnect();
  }

  const human = await tabulactl('status');
  t.equal(human.code, 0);
  t.match(human.stdout, new RegExp(`${PREFIX}0\\s+${POOL}\\s+0\\s+clean`), 'human status lists the VM as clean');

  for (const d of doms) {
    const boots = await guestBoots(join(storage, `${d.name}.console.log`));
    t.equal(boots.length, 1, `${d.name} booted once`);
    t.equal(boots[0]?.vm, d.name, 'the guest knows its own name (SMBIOS)');
    t.equal(boots[0]?.previousMarker, 'none', 'a fresh clone has no marker');
  }
});

t.test('a VM destroyed behind the supervisor\'s back is replaced', async (t) => {
  const [before] = await listDomains(`${PREFIX}0`);
  await virsh('destroy', `${PREFIX}0`);
  const s = await waitFor('slot 0 replaced and clean', async () => {
    const st = await status();
    const vm = st.pools.find((p) => p.name === POOL)?.vms.find((v) => v.slot === 0);
    return vm && vm.uuid !== before?.uuid && vm.state === 'clean' && vm.active ? st : undefined;
  }, 120_000, 500);
  t.ok(s, 'slot 0 holds a new, clean VM');
  t.match(supervisor.log(), /event=vm-undefined .*vm=tabula-it-life-0 reason=died/, 'logged why it went');
});

t.test('recycling a VM replaces it with a fresh clone: its disk marker is gone', async (t) => {
  const name = `${PREFIX}1`;
  const overlay = join(storage, `${name}.qcow2`);
  const [boot] = await guestBoots(join(storage, `${name}.console.log`));
  const marker = await readMarker(overlay);
  t.equal(marker, `TABULA-MARKER vm=${name} session=${boot?.session}`, 'the guest wrote its marker onto its own overlay');
  const [before] = await listDomains(name);

  const r = await tabulactl('recycle', name);
  t.equal(r.code, 0, r.stderr);
  await waitFor('replacement clean', async () => {
    const st = await status();
    const vm = st.pools.find((p) => p.name === POOL)?.vms.find((v) => v.name === name);
    return vm && vm.uuid !== before?.uuid && vm.state === 'clean' ? true : undefined;
  });
  const boots = await guestBoots(join(storage, `${name}.console.log`));
  t.equal(boots.length, 1, 'the replacement has a console log of its own');
  t.equal(boots[0]?.previousMarker, 'none', 'the replacement saw no marker on its disk');
  t.not(boots[0]?.session, boot?.session, 'a new boot');
  const newMarker = await readMarker(overlay);
  t.not(newMarker, marker, "the old visitor's marker is not on the new overlay");
  t.match(newMarker, `session=${boots[0]?.session}`);
  t.match(supervisor.log(), new RegExp(`event=vm-marked-dirty vm=${name}`));

  const missing = await tabulactl('recycle', 'tabula-no-such-vm');
  t.equal(missing.code, 4, 'recycling an unknown VM exits 4');
  t.match(missing.stderr, /no Tabula VM named "tabula-no-such-vm"/);
});

t.test('SIGKILL and restart: the clean VMs are adopted, not rebooted, and nothing is orphaned', async (t) => {
  await waitForClean(POOL, 2);
  const before = await listDomains(PREFIX);
  const pids = await Promise.all(before.map((d) => qemuPid(d.name)));
  t.ok(pids.every((p) => p !== undefined), 'both QEMUs found');
  await supervisor.stop('SIGKILL');

  supervisor = new SupervisorProcess(config);
  await supervisor.waitForLine(/event=supervisor-ready/);
  const s = await waitForClean(POOL, 2);
  const after = await listDomains(PREFIX);
  t.same(after.map((d) => [d.name, d.uuid, d.id]).sort(), before.map((d) => [d.name, d.uuid, d.id]).sort(), 'same domains, same UUIDs, same libvirt ids');
  t.same(await Promise.all(after.map((d) => qemuPid(d.name))), pids, 'same QEMU processes: no reboot');
  t.notMatch(supervisor.log(), /event=(vm-defined|vm-destroyed|vm-undefined|vm-started)/, 'the restarted supervisor changed nothing');
  t.equal(s.pools[0]?.counts['clean'], 2);
  const files = (await readdir(storage)).sort();
  t.same(files, [`${PREFIX}0.console.log`, `${PREFIX}0.qcow2`, `${PREFIX}1.console.log`, `${PREFIX}1.qcow2`], 'exactly the files of the two VMs');
});

t.test('the golden image was never written', async (t) => {
  t.equal(await sha256(root.golden), goldenBefore);
});

t.test('SIGHUP reloads the config: an invalid one is refused, a smaller pool shrinks live', async (t) => {
  const good = testConfig(root, [{ name: POOL, size: 2, spicePortBase: 5940 }]);
  await writeConfig(root, good.replace('size = 2', 'size = -1'));
  supervisor.signal('SIGHUP');
  await supervisor.waitForLine(/event=config-reload-refused .*pool\[0\]\.size/);
  t.equal((await status()).pools[0]?.counts['clean'], 2, 'the old config stays in force');

  await writeConfig(root, good.replace('size = 2', 'size = 1'));
  supervisor.signal('SIGHUP');
  await supervisor.waitForLine(/event=config-reloaded .*pools=it-life:1/);
  await waitFor('slot 1 removed', async () => ((await listDomains(PREFIX)).map((d) => d.name).join() === `${PREFIX}0` ? true : undefined));
  await waitFor('its files removed', async () => ((await readdir(storage)).every((f) => f.startsWith(`${PREFIX}0.`)) ? true : undefined));
  t.equal((await status()).pools[0]?.size, 1, 'status shows the new size');

  await writeConfig(root, testConfig(root, []));
  supervisor.signal('SIGHUP');
  await waitFor('pool removed', async () => ((await listDomains(PREFIX)).length === 0 ? true : undefined));
  t.same((await status()).pools, [], 'the pool is gone from the API');
});

t.test('SIGTERM is a clean exit', async (t) => {
  await supervisor.stop();
  t.equal((await supervisor.exited).code, 0);
  t.same(await listDomains(PREFIX), [], 'no domain of the pool is left');
});
