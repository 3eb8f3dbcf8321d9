// Runs last: whatever the tests above created, they removed.
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import t from 'tap';
import { run, TEST_PREFIX } from '../helpers/env.js';
import { listDomains } from '../helpers/virsh.js';

t.test('no test domain, directory or process is left', async (t) => {
  t.same(await listDomains(`tabula-${TEST_PREFIX}-`), [], 'no libvirt domain');
  const dirs = (await readdir(tmpdir())).filter((d) => d.startsWith(`tabula-${TEST_PREFIX}-`));
  t.same(dirs, [], 'no test directory');
  const { stdout } = await run('pgrep', ['-af', 'supervisor/dist/main.js']).catch(() => ({ stdout: '' }));
  t.same(stdout.trim(), '', 'no supervisor process');
  const qemus = await run('pgrep', ['-af', `guest=tabula-${TEST_PREFIX}-`]).catch(() => ({ stdout: '' }));
  t.same(qemus.stdout.trim(), '', 'no QEMU of a test domain');
});
