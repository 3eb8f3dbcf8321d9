// Bad input is refused with a message naming what is wrong, and nothing is touched.
import { copyFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { makeTestRoot, run, SUPERVISOR, TABULACTL, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { status, SupervisorProcess, waitForClean } from '../helpers/supervisor-process.js';
import { listDomains, removeDomains } from '../helpers/virsh.js';

const PREFIX = `tabula-${TEST_PREFIX}-bad`;
const root = await makeTestRoot('bad');
let supervisor: SupervisorProcess | undefined;

t.teardown(async () => {
  await supervisor?.stop();
  await removeDomains(PREFIX);
  await root.cleanup();
});

async function runSupervisor(...args: string[]): Promise<{ code: number; out: string }> {
  return runWith({}, SUPERVISOR, ...args);
}

async function runWith(env: NodeJS.ProcessEnv, script: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, ...args], { timeout: 30_000, env: { ...process.env, ...env } });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

const exists = (p: string) => access(p).then(() => true, () => false);

t.test('an invalid config is refused at start, naming the key, and nothing is touched', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['misspelt key', testConfig(root, [{ name: `${TEST_PREFIX}-bad`, size: 1, spicePortBase: 5960 }]).replace('size = 1', 'szie = 1'), /pool\[0\]: unknown key 'szie'/],
    ['size out of range', testConfig(root, [{ name: `${TEST_PREFIX}-bad`, size: 1000, spicePortBase: 5960 }]), /pool\[0\]\.size: /],
    ['wrong type', testConfig(root, [{ name: `${TEST_PREFIX}-bad`, size: 1, spicePortBase: 5960 }]).replace('size = 1', 'size = "two"'), /pool\[0\]\.size: Expected number, received string/],
    ['relative path', testConfig(root, [{ name: `${TEST_PREFIX}-bad`, size: 1, spicePortBase: 5960, golden: 'golden.qcow2' }]), /pool\[0\]\.golden_image: must be an absolute path/],
    ['not TOML', '[supervisor\nstate_dir = ', /not valid TOML/],
    [
      'overlapping Spice ports',
      testConfig(root, [
        { name: `${TEST_PREFIX}-bad`, size: 2, spicePortBase: 5960 },
        { name: `${TEST_PREFIX}-bad2`, size: 2, spicePortBase: 5961 },
      ]),
      /pool\[1\]\.spice_port_base: ports 5961-5962 overlap pool\[0\]/,
    ],
  ];
  for (const [what, text, message] of cases) {
    const path = await writeConfig(root, text, 'bad.toml');
    const r = await runSupervisor('--config', path);
    t.equal(r.code, 78, `${what}: exit 78 (EX_CONFIG)`);
    t.match(r.out, /event=config-refused code=config-invalid/, `${what}: logged as refused`);
    t.match(r.out, message, `${what}: the message names what is wrong`);
  }
  const missing = await runSupervisor('--config', join(root.dir, 'nope.toml'));
  t.equal(missing.code, 78);
  t.match(missing.out, /code=config-unreadable .*nope\.toml/);
  t.notOk(await exists(join(root.dir, 'state')), 'no state directory was created');
  t.same(await listDomains(PREFIX), [], 'no domain was defined');
});

t.test('golden images that are missing, not qcow2/raw, or chained are refused per pool', async (t) => {
  const vdi = join(root.dir, 'golden.vdi');
  const chained = join(root.dir, 'chained.qcow2');
  const later = join(root.dir, 'later.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'vdi', vdi, '64M']);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', root.golden, chained]);
  const pools = [
    { name: `${TEST_PREFIX}-bad-missing`, size: 1, spicePortBase: 5960, golden: later },
    { name: `${TEST_PREFIX}-bad-vdi`, size: 1, spicePortBase: 5961, golden: vdi },
    { name: `${TEST_PREFIX}-bad-chain`, size: 1, spicePortBase: 5962, golden: chained },
  ];
  const path = await writeConfig(root, testConfig(root, pools), 'golden.toml');

  const check = await runSupervisor('--config', path, '--check-config');
  t.equal(check.code, 78, '--check-config refuses');
  t.match(check.out, `pool ${TEST_PREFIX}-bad-missing: golden image ${later} does not exist`);
  t.match(check.out, `pool ${TEST_PREFIX}-bad-vdi: golden image ${vdi} is vdi, not qcow2 or raw`);
  t.match(check.out, `pool ${TEST_PREFIX}-bad-chain: golden image ${chained} has a backing file`);

  supervisor = new SupervisorProcess(path);
  await supervisor.waitForLine(/event=supervisor-ready/);
  const s = await status();
  const reason = (name: string) => s.pools.find((p) => p.name === name)?.healthReason ?? '';
  t.ok(s.pools.every((p) => !p.healthy), 'every pool is reported unhealthy');
  t.match(reason(`${TEST_PREFIX}-bad-missing`), `${later} does not exist`);
  t.match(reason(`${TEST_PREFIX}-bad-vdi`), 'is vdi, not qcow2 or raw');
  t.match(reason(`${TEST_PREFIX}-bad-chain`), 'has a backing file');
  t.match(supervisor.log(), /<3>event=golden-image-unusable pool=it-bad-vdi/, 'logged at error priority');
  t.same(await listDomains(PREFIX), [], 'no clone was made from a bad image');

  // Once the image is put in place the pool fills by itself.
  await copyFile(root.golden, later);
  await waitForClean(`${TEST_PREFIX}-bad-missing`, 1);
  const after = await status();
  t.ok(after.pools.find((p) => p.name === `${TEST_PREFIX}-bad-missing`)?.healthy, 'healthy again');
  t.match(supervisor.log(), /event=golden-image-usable pool=it-bad-missing/);
  t.same((await listDomains(PREFIX)).map((d) => d.name), [`tabula-${TEST_PREFIX}-bad-missing-0`], 'only the fixed pool got a VM');
  await supervisor.stop();
  await waitFor('cleanup', async () => ((await removeDomains(PREFIX)) ? true : undefined));
});

t.test('without a system bus the supervisor and tabulactl fail at once, saying so', async (t) => {
  const noBus = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${root.dir}/no-bus` };
  const path = await writeConfig(root, testConfig(root, []), 'nobus.toml');
  const sup = await runWith(noBus, SUPERVISOR, '--config', path);
  t.equal(sup.code, 1, 'supervisor exits 1 (systemd restarts it)');
  t.match(sup.out, /<3>event=bus-unavailable .*cannot connect to the system bus/);
  const ctl = await runWith(noBus, TABULACTL, 'status');
  t.equal(ctl.code, 3, 'tabulactl exits 3');
  t.match(ctl.out, /cannot connect to the system bus/);
  const notRunning = await runWith({}, TABULACTL, 'status');
  t.equal(notRunning.code, 3, 'with the bus up but no supervisor: exit 3 too');
  t.match(notRunning.out, /the Tabula supervisor is not running/);
});
