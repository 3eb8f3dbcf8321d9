#!/usr/bin/env node
// The station firewall, from the station's config file: printed (--print) or
// loaded into the kernel (--apply, what tabula-station-firewall.service runs
// at boot, before the network comes up). Only the local file counts: the
// firewall is up before there is a network to fetch the server's client.conf.
import { parseArgs } from 'node:util';
import { applyNftRuleset } from '../adapters/nft-apply.js';
import { readStationConf } from '../adapters/station-conf-file.js';
import { buildStationConfig } from '../config/station-conf.js';
import { hostname } from 'node:os';
import { asStationError } from '../domain/errors.js';
import { renderStationFirewall, renderStationLockdown } from '../render/station-firewall.js';

const USAGE = `usage: station-firewall (--print | --apply) [--config FILE]
  --print    print the ruleset (nft -f syntax) for the config
  --apply    load it with nft (root); a config that cannot be used loads the
             lockdown instead (loopback only) and exits 1
  --config   the station's settings (default /etc/tabula/station.conf)

Exit codes: 0 ok, 1 failure, 2 usage.`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        print: { type: 'boolean' },
        apply: { type: 'boolean' },
        config: { type: 'string', default: '/etc/tabula/station.conf' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`station-firewall: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.print === values.apply) {
    process.stderr.write(`station-firewall: give exactly one of --print and --apply\n${USAGE}\n`);
    return 2;
  }
  const path = values.config!;

  let ruleset: string;
  try {
    ruleset = renderStationFirewall(buildStationConfig([{ ...(await readStationConf(path)), strict: true }], hostname()));
  } catch (e) {
    const err = asStationError(e);
    process.stderr.write(`station-firewall: cannot build the firewall: ${err.message}\n`);
    if (values.apply) await lockdown(err.message);
    return 1;
  }

  if (values.print) {
    process.stdout.write(ruleset);
    return 0;
  }
  try {
    await applyNftRuleset(ruleset);
  } catch (e) {
    // nft refused the rules (or is missing): the lockdown will most likely fail the
    // same way, but when the cause was in the rules it still closes the station.
    const err = asStationError(e, 'firewall-failed');
    process.stderr.write(`station-firewall: ${err.message}\n`);
    await lockdown(err.message);
    return 1;
  }
  return 0;
}

/** Fail closed: a station whose firewall cannot be built talks to nobody. */
async function lockdown(reason: string): Promise<void> {
  try {
    await applyNftRuleset(renderStationLockdown(reason));
    process.stderr.write('station-firewall: loaded the lockdown instead: loopback only, no network until the config is fixed\n');
  } catch (e) {
    process.stderr.write(`station-firewall: the lockdown failed too, the station is NOT firewalled: ${asStationError(e).message}\n`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`station-firewall: ${asStationError(e).message}\n`);
    process.exit(1);
  },
);
