#!/usr/bin/env node
// The station firewall, from the station's settings: printed (--print) or
// loaded into the kernel (--apply). tabula-station-firewall.service runs
// --apply at boot, before the network: with no lease yet and no file naming
// the server, that is DHCP only. tabula-station-firewall-lease.service runs it
// again whenever networkd's lease changes, so the rules follow the server the
// lease names. The sources are the agent's (config/station-sources.ts); the
// server's client.conf, which names the signal and Spice ports, is fetched
// through the rules just loaded for that server, and the rules are loaded
// again when it changes them.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { JournalLogger } from '../adapters/journal-logger.js';
import { applyNftRuleset } from '../adapters/nft-apply.js';
import { fetchServerConf, readStationSources } from '../adapters/station-conf-file.js';
import { serverConfigUrl, serverUnknown } from '../config/station-conf.js';
import { settingsFrom, STATION_PATHS, type Settings } from '../config/station-sources.js';
import { asStationError } from '../domain/errors.js';
import type { StationPaths, StationSourcesRead } from '../domain/station-sources.js';
import { renderStationFirewall, renderStationLockdown } from '../render/station-firewall.js';

const USAGE = `usage: station-firewall (--print | --apply) [--config FILE] [--card-config FILE] [--lease-dir DIR]
  --print        print the ruleset (nft -f syntax) for the current settings
  --apply        load it with nft (root); settings that cannot be used load
                 the lockdown instead (loopback only) and exit 1
  --config       the image's settings (default ${STATION_PATHS.config})
  --card-config  the settings on the card's boot partition (default ${STATION_PATHS.card})
  --lease-dir    systemd-networkd's DHCP leases (default ${STATION_PATHS.leaseDir})
No server known (no lease naming one, no server_ip) is no failure: the rules
then allow DHCP only, until a lease names the server.

Exit codes: 0 ok, 1 failure, 2 usage.`;

/** Reads of the leases before giving up on their settling (each round is a few ms unless the server is slow). */
const MAX_ROUNDS = 5;

const logger = new JournalLogger();

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        print: { type: 'boolean' },
        apply: { type: 'boolean' },
        config: { type: 'string', default: STATION_PATHS.config },
        'card-config': { type: 'string', default: STATION_PATHS.card },
        'lease-dir': { type: 'string', default: STATION_PATHS.leaseDir },
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
  const paths: StationPaths = { config: values.config!, card: values['card-config']!, leaseDir: values['lease-dir']! };
  const load = values.apply ? applyNftRuleset : async () => undefined;

  for (let round = 1; ; round++) {
    let read: StationSourcesRead;
    let built: { ruleset: string; settings: Settings };
    try {
      read = await readStationSources(paths);
      built = await build(read, load);
    } catch (e) {
      const err = asStationError(e, 'firewall-failed');
      logger.err('firewall-failed', { code: err.code, error: err.message });
      if (values.apply) await lockdown(err.message);
      return 1;
    }
    if (values.print) {
      process.stdout.write(built.ruleset);
      return 0;
    }
    const cfg = built.settings.config;
    if (cfg.serverAddress === undefined) logger.notice('firewall-dhcp-only', { detail: serverUnknown(cfg).message });
    else logger.notice('firewall-loaded', { server: cfg.serverAddress, origin: cfg.serverOrigin, http: cfg.httpPort, signal: cfg.signalPort, spice: cfg.spicePort });
    // A lease that changed while this ran may not start the unit again (it is still
    // active): look once more, and build again until the rules are those of the lease now.
    const now = await readStationSources(paths).catch(() => undefined);
    if (now !== undefined && sameLeases(now, read)) return 0;
    if (round === MAX_ROUNDS) {
      logger.warning('lease-unsettled', { rounds: round });
      return 0;
    }
  }
}

/**
 * The ruleset for the settings as they are: first from the station's own
 * sources (loaded at once, so a new server is reached), then with the
 * server's client.conf (loaded when it changes the rules). Rejects when the
 * station's own sources cannot be used, or nft refuses the rules.
 */
async function build(read: StationSourcesRead, load: (ruleset: string) => Promise<void>): Promise<{ ruleset: string; settings: Settings }> {
  const own = settingsFrom(read, hostname());
  for (const note of own.notes) logger.warning('lease-problem', { detail: note });
  const first = renderStationFirewall(own.config);
  await load(first);
  const url = serverConfigUrl(own.config);
  if (url === '') return { ruleset: first, settings: own };
  let settings: Settings;
  let ruleset: string;
  try {
    const got = await fetchServerConf(url);
    if ('error' in got) throw new Error(got.error);
    settings = settingsFrom(read, hostname(), { url, text: got.text });
    ruleset = renderStationFirewall(settings.config);
  } catch (e) {
    // The station's own sources alone make a closed ruleset: the server's ports are
    // the files' (or the defaults) until the next lease change or reload.
    logger.warning('server-config-unavailable', { url, error: asStationError(e).message });
    return { ruleset: first, settings: own };
  }
  if (ruleset !== first) await load(ruleset);
  return { ruleset, settings };
}

function sameLeases(a: StationSourcesRead, b: StationSourcesRead): boolean {
  return JSON.stringify(a.leases) === JSON.stringify(b.leases);
}

/** Fail closed: a station whose firewall cannot be built talks to nobody. */
async function lockdown(reason: string): Promise<void> {
  try {
    await applyNftRuleset(renderStationLockdown(reason));
    logger.err('firewall-lockdown', { detail: 'loopback only, no network until the settings are fixed' });
  } catch (e) {
    logger.err('firewall-lockdown-failed', { detail: 'the station is NOT firewalled', error: asStationError(e).message });
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    logger.err('firewall-failed', { error: asStationError(e).message });
    process.exit(1);
  },
);
