/**
 * Everything the station firewall depends on. The whole ruleset is a function
 * of this value, so a restarted supervisor rebuilds it from libvirt's records
 * and a forward that no VM accounts for any more simply is not rendered.
 */
export interface FirewallSpec {
  /** The nftables table (family inet) Tabula owns entirely. */
  readonly table: string;
  /** The interface the stations sit on. */
  readonly lanInterface: string;
  /** The server's address on the station LAN: what stations connect to. */
  readonly lanAddress: string;
  /** The one port stations open a console on, whichever VM they were given. */
  readonly spicePort: number;
  /** Where the VM consoles listen: on the server, but on neither loopback nor the LAN. */
  readonly consoleAddress: string;
  /** Every port a console may listen on (all pools' ranges, inclusive). */
  readonly consolePorts: ReadonlyArray<{ readonly from: number; readonly to: number }>;
  /** Open hand-offs: `station` (an IPv4 address) may reach the console on `consolePort`. */
  readonly forwards: ReadonlyArray<{ readonly station: string; readonly consolePort: number }>;
}

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/**
 * A dotted quad without leading zeros. Anything else (a name, IPv6, an nft set
 * reference, an option for a CLI) is never taken for a station.
 */
export function isIpv4(s: unknown): s is string {
  return typeof s === 'string' && IPV4.test(s);
}

/** For ordering addresses numerically. */
export function ipv4Number(s: string): number {
  return s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}
