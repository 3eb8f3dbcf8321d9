import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

// The real CLI (built), on real files: what tabula-network.service runs at boot.
const run = promisify(execFile);
const CLI = new URL('../../dist/cli/network-units.js', import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

t.test('network units from the supervisor config', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabula-it-netunits-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const units = join(dir, 'network');
  const unit = join(units, '10-tabula-stations.network');
  const config = join(dir, 'supervisor.toml');

  await writeFile(config, '[supervisor]\nstate_dir = "/var/lib/tabula"\n\n[stations]\ninterface = "enp3s0"\n');
  let r = await cli(config, units);
  t.equal(r.code, 0, r.stderr);
  t.match(await readFile(unit, 'utf8'), /\[Match\]\nName=enp3s0\n\n\[Link\]\nUnmanaged=yes/);

  // The station LAN removed from the config: the unit goes, networkd may use the interface.
  await writeFile(config, '[supervisor]\nstate_dir = "/var/lib/tabula"\n');
  r = await cli(config, units);
  t.equal(r.code, 0, r.stderr);
  await t.rejects(access(unit), 'the unit is removed');

  // A broken config: exit 78 naming the file and line, and the unit dir untouched.
  await writeFile(config, '[stations]\ninterface = "not an interface!"\n');
  r = await cli(config, units);
  t.equal(r.code, 78);
  t.match(r.stderr, new RegExp(`${config}.*interface`));
  await t.rejects(access(unit));

  r = await cli(join(dir, 'missing.toml'), units);
  t.equal(r.code, 78);
  t.match(r.stderr, /missing\.toml/);

  r = await cli(config);
  t.equal(r.code, 2, 'usage error');
  t.match(r.stderr, /usage: tabula-network-units CONFIG DIR/);
});
