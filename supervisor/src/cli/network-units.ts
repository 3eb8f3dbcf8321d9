#!/usr/bin/env node
import { readFile, rm, writeFile, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from '../config/config.js';
import { asTabulaError } from '../domain/errors.js';
import { renderUnmanagedLink, UNMANAGED_LINK_FILE } from '../render/networkd.js';

const USAGE = `usage: tabula-network-units CONFIG DIR
Writes DIR/${UNMANAGED_LINK_FILE}, which keeps systemd-networkd off the station LAN's
interface named in CONFIG ([stations] interface); removes it when CONFIG has no
station LAN. Run at boot before systemd-networkd (tabula-network.service).
`;

/** Exit status 78 (EX_CONFIG) for a config that cannot be read, as the supervisor. */
async function main(argv: string[]): Promise<number> {
  const [config, dir] = argv;
  if (config === undefined || dir === undefined || argv.length !== 2 || config.startsWith('-')) {
    process.stderr.write(USAGE);
    return argv.includes('--help') ? 0 : 2;
  }
  try {
    const cfg = parseConfig(await readFile(config, 'utf8'), config);
    const target = join(dir, UNMANAGED_LINK_FILE);
    if (!cfg.stations) {
      await rm(target, { force: true });
      process.stdout.write(`${config}: no station LAN; networkd may use every wired interface\n`);
      return 0;
    }
    await mkdir(dir, { recursive: true });
    await writeFile(`${target}.new`, renderUnmanagedLink(cfg.stations.interface, `the station LAN of ${config}`));
    await rename(`${target}.new`, target);
    process.stdout.write(`${target}: networkd leaves ${cfg.stations.interface} to the supervisor\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`tabula-network-units: ${asTabulaError(e, 'config-invalid').message}\n`);
    return 78;
  }
}

process.exitCode = await main(process.argv.slice(2));
