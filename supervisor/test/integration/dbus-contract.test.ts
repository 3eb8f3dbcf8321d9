// docs/dbus/org.tabula.Supervisor1.xml is the documented contract: the running
// supervisor must export exactly its interfaces, members and signatures (the
// Session interface, which needs a session under way, is compared in admin-api.test.ts).
import t from 'tap';
import { contractMembers, documentedMembers, introspect } from '../helpers/bus.js';
import { makeTestRoot, run, TABULACTL, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { SupervisorProcess, tabulactl } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-api`;
const root = await makeTestRoot('api');
const supervisor = new SupervisorProcess(await writeConfig(root, testConfig(root, [{ name: POOL, size: 1, spicePortBase: 5975 }])));

t.teardown(async () => {
  await supervisor.stop();
  await removeDomains(`tabula-${POOL}-`);
  await root.cleanup();
});

t.test('the exported interfaces match the documented contract', async (t) => {
  await supervisor.waitForLine(/event=supervisor-ready/);
  const vmPath = `/org/tabula/Supervisor1/vm/tabula_2d${POOL.replace(/-/g, '_2d')}_2d0`;
  await waitFor('VM object', async () => ((await introspect(vmPath).catch(() => '')).includes('org.tabula.Supervisor1.Vm') ? true : undefined), 60_000);
  const live = [
    ...contractMembers(await introspect('/org/tabula/Supervisor1')),
    ...contractMembers(await introspect(`/org/tabula/Supervisor1/pool/${POOL.replace(/-/g, '_2d')}`)),
    ...contractMembers(await introspect(vmPath)),
  ].sort();
  const documented = await documentedMembers();
  const session = documented.filter((m) => m.startsWith('org.tabula.Supervisor1.Session '));
  t.ok(documented.length > 40, 'the contract was parsed');
  t.ok(session.length >= 10, 'it documents the Session interface too');
  t.same(live, documented.filter((m) => !session.includes(m)));
  for (const member of ['method EndSession (in:s)', 'method ReloadConfig ()', 'method FactoryReset (in:b,in:s)', 'signal SessionStarted (in:s,in:s,in:s,in:s)', 'signal SessionEnded (in:s,in:s,in:s,in:s,in:t)', 'signal PoolHealthChanged (in:s,in:b,in:s)', 'property Sessions ao read']) {
    t.ok(live.includes(`org.tabula.Supervisor1 ${member}`), `the supervisor exports ${member}`);
  }
  for (const member of ['method Drain ()', 'method Undrain ()', 'method Resize (in:u)', 'property Drained b read']) {
    t.ok(live.includes(`org.tabula.Supervisor1.Pool ${member}`), `a pool exports ${member}`);
  }
});

t.test('the bus policy: root acts, group "tabula" only reads, anyone else is refused', async (t) => {
  const { stdout } = await run('getent', ['group', 'tabula']);
  const gid = stdout.split(':')[2] as string;
  const as = (groups: string[], ...args: string[]) =>
    run('setpriv', ['--reuid=65534', '--regid=65534', ...groups, process.execPath, TABULACTL, ...args]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
  const reader = await as([`--groups=${gid}`], 'status');
  t.equal(reader.code, 0, 'a member of "tabula" reads the status');
  t.match(reader.out, POOL);
  const act = await as([`--groups=${gid}`], 'recycle', `tabula-${POOL}-0`);
  t.equal(act.code, 5, 'but may not recycle (exit 5)');
  t.match(act.out, /permission denied/);
  const stranger = await as(['--clear-groups'], 'status');
  t.equal(stranger.code, 5, 'anyone else may not even read');
  const root = await tabulactl('status');
  t.equal(root.code, 0, 'root reads');
});
