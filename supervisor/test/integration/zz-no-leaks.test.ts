// Runs last: whatever the tests above created, they removed.
import { access, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import t from 'tap';
import { run, TEST_PREFIX } from '../helpers/env.js';
import { listDomains } from '../helpers/virsh.js';
import { TEST_BUS_POLICY, TEST_POLKIT_RULE } from '../helpers/accounts.js';

t.test('no test domain, directory, account or process is left', async (t) => {
  t.same(await listDomains(`tabula-${TEST_PREFIX}-`), [], 'no libvirt domain');
  const dirs = (await readdir(tmpdir())).filter((d) => d.startsWith(`tabula-${TEST_PREFIX}-`));
  t.same(dirs, [], 'no test directory');
  const { stdout } = await run('pgrep', ['-af', 'supervisor/dist/main.js']).catch(() => ({ stdout: '' }));
  t.same(stdout.trim(), '', 'no supervisor process');
  const qemus = await run('pgrep', ['-af', `guest=tabula-${TEST_PREFIX}-`]).catch(() => ({ stdout: '' }));
  t.same(qemus.stdout.trim(), '', 'no QEMU of a test domain');
  const tables = (await run('nft', ['list', 'tables'])).stdout.split('\n').filter((l) => /tabula_it/.test(l));
  t.same(tables, [], 'no nftables table of a test');
  const spaces = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`tabula-${TEST_PREFIX}-`));
  t.same(spaces, [], 'no station namespace');
  const links = (await run('ip', ['-br', 'link'])).stdout.split('\n').map((l) => l.split(/[\s@]/)[0] ?? '').filter((n) => /^(tbr-|tv-|tabula-it-)/.test(n));
  t.same(links, [], 'no test bridge, veth or console link');
  const mounts = (await run('findmnt', ['-rn', '-o', 'SOURCE,TARGET'])).stdout.split('\n').filter((l) => l.startsWith(`${TEST_PREFIX}-`));
  t.same(mounts, [], 'no test filesystem mounted');
  const users = (await readFile('/etc/passwd', 'utf8')).split('\n').filter((l) => l.startsWith(`tabula-${TEST_PREFIX}-`));
  t.same(users, [], 'no test account (kiosk or D-Bus caller)');
  const groups = (await readFile('/etc/group', 'utf8')).split('\n').filter((l) => l.startsWith(`tabula-${TEST_PREFIX}-`) || /^tabula:.*tabula-it-/.test(l));
  t.same(groups, [], 'no test group, nor a test account in group tabula');
  for (const grant of [TEST_BUS_POLICY, TEST_POLKIT_RULE]) {
    t.notOk(await access(grant).then(() => true, () => false), `no ${grant}`);
  }
  const agents = await run('pgrep', ['-af', 'agent/dist/main.js']).catch(() => ({ stdout: '' }));
  t.same(agents.stdout.trim(), '', 'no station agent process');
});
