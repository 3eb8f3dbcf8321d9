import type { StationPaths, StationSourcesRead } from '../domain/station-sources.js';
import { chooseLease, leaseValues, parseNetworkdLease } from './dhcp-lease.js';
import { buildStationConfig, type ConfSource } from './station-conf.js';
import type { StationConfig } from './station-config.js';

/**
 * Where a station's settings come from, each later one winning key by key:
 *
 *   1. the built-in defaults;
 *   2. the DHCP lease: the server's address and HTTP port (option 224, else
 *      the DHCP server identifier);
 *   3. the server's /client.conf, fetched from there: its signal and Spice
 *      ports (the server knows them; the lease only says where to ask);
 *   4. `tabula/station.conf` on the card's boot partition: a site without
 *      those DHCP options sets `server_ip` there, on any PC;
 *   5. the image's own /etc/tabula/station.conf, for a custom image. The one
 *      shipped sets nothing the lease or the server give, so one image works
 *      at every site.
 *
 * The firewall and the agent read the same sources (the firewall at boot and
 * whenever the lease changes, the agent before each visit).
 */
export const STATION_PATHS: StationPaths = {
  config: '/etc/tabula/station.conf',
  // live-boot mounts the card's FAT partition, the live medium, here (read-only).
  card: '/run/live/medium/tabula/station.conf',
  leaseDir: '/run/systemd/netif/leases',
};

export interface Settings {
  readonly config: StationConfig;
  /** What in the lease was set aside and what was taken instead, for the log. */
  readonly notes: readonly string[];
}

/**
 * The config from what the station's sources held, with the server's
 * client.conf when it was fetched (from `serverConfigUrl` of the config
 * without it). A bad value in the card's or the image's file is refused,
 * naming the file and line; an unknown key in the server's file is ignored.
 */
export function settingsFrom(read: StationSourcesRead, hostname: string, server?: { readonly url: string; readonly text: string }): Settings {
  const lease = chooseLease(read.leases.map((l) => parseNetworkdLease(l.origin, l.text)));
  const sources: ConfSource[] = [
    leaseValues(lease, read.paths.leaseDir),
    ...(server === undefined ? [] : [{ origin: server.url, text: server.text, strict: false }]),
    read.card === undefined ? { origin: `${read.paths.card} (absent)`, values: {} } : { origin: read.paths.card, text: read.card, strict: true },
    { origin: read.paths.config, text: read.config, strict: true },
  ];
  return { config: buildStationConfig(sources, hostname), notes: lease?.notes ?? [] };
}
