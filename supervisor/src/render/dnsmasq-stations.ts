import { TabulaError } from '../domain/errors.js';
import { isIpv4 } from '../domain/firewall.js';
import { isInterfaceName, isStationName, subnetOf, ipv4String, type StationLanSpec } from '../domain/station-lan.js';

export type { StationLanSpec } from '../domain/station-lan.js';

/**
 * The DHCP option that tells a station where the server's HTTP endpoint is: a
 * URL string. 224–254 are site-specific options (RFC 3942), so no client gives
 * it another meaning; option 114 (RFC 8910) would be the captive-portal API
 * and option 72 carries addresses without a port. Stations read it as
 * `opt224` (udhcpc: hex of the URL) or the equivalent of their DHCP client.
 */
export const STATION_URL_OPTION = 224;

export interface DnsmasqPaths {
  readonly leaseFile: string;
  /** Without one, dnsmasq writes no PID file (the supervisor holds the PID anyway). */
  readonly pidFile?: string;
}

/**
 * dnsmasq as the station LAN's DHCP server and nothing else:
 *
 * - `port=0`: no DNS at all; stations get neither a DNS server nor a router
 *   (options 6 and 3 sent empty, which stops dnsmasq offering itself as
 *   either), so a station reaches the server's LAN address and nothing beyond.
 * - `interface=` + `bind-interfaces`: the DHCP socket is bound to the station
 *   interface alone (SO_BINDTODEVICE), so dnsmasqs on other interfaces (the
 *   VMs', libvirt's) run beside it; and a station interface that does not
 *   exist makes dnsmasq exit at once ("unknown interface") instead of starting
 *   on a wildcard socket that would share port 67 with them. The price: a link
 *   that vanishes and comes back needs a restart (`bind-dynamic` would follow
 *   it, but starts without the binding when the link is missing).
 * - `dhcp-authoritative`: the only DHCP server of its LAN, so a station coming
 *   back with an unknown lease is answered at once rather than after a timeout.
 * - Leases live in the lease file, which the supervisor reads; no
 *   `dhcp-script`, no `log-dhcp` (the ordinary one line per DHCP message is
 *   logged).
 * - NTP (option 42) names the server when `ntp`; the station URL is forced
 *   (sent even to clients that did not ask for option 224).
 *
 * Everything written is checked here, whatever validated the spec before:
 * values are addresses, numbers, the MAC shape, station names and paths of a
 * plain character set, so nothing in a spec can add a line or an option.
 * Semantic checks (range in the subnet and so on) are stationLanProblems' and
 * `dnsmasq --test`'s.
 */
export function renderStationDnsmasq(spec: StationLanSpec, paths: DnsmasqPaths): string {
  const { mask } = subnetOf(address(spec.address, 'server address'), prefixLength(spec.prefixLength));
  const lines = [
    '# Written by the Tabula supervisor for the station LAN; changes here are overwritten.',
    'port=0',
    `interface=${interfaceName(spec.interface)}`,
    'except-interface=lo',
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    `dhcp-range=${address(spec.dhcpRange.from, 'DHCP range start')},${address(spec.dhcpRange.to, 'DHCP range end')},${ipv4String(mask)},${positiveInteger(spec.leaseSeconds, 'lease time')}`,
    'dhcp-authoritative',
    `dhcp-leasefile=${path(paths.leaseFile, 'lease file')}`,
    `pid-file=${paths.pidFile === undefined ? '' : path(paths.pidFile, 'PID file')}`,
    'dhcp-option=option:router',
    'dhcp-option=option:dns-server',
  ];
  if (spec.ntp) lines.push(`dhcp-option=option:ntp-server,${spec.address}`);
  if (spec.httpPort !== undefined) {
    lines.push(`dhcp-option-force=${STATION_URL_OPTION},"http://${spec.address}:${port(spec.httpPort)}/"`);
  }
  for (const r of spec.reservations) {
    lines.push(`dhcp-host=${macShape(r.mac).toLowerCase()},${address(r.address, `address of ${r.mac}`)},${stationName(r.name)}`);
  }
  return lines.join('\n') + '\n';
}

function refuse(what: string, value: unknown): never {
  throw new TabulaError('config-invalid', `station LAN: ${what} ${JSON.stringify(value) ?? String(value)} cannot be written into a dnsmasq config`);
}

function address(a: string, what: string): string {
  return isIpv4(a) ? a : refuse(what, a);
}

function prefixLength(n: number): number {
  return Number.isInteger(n) && n >= 0 && n <= 32 ? n : refuse('prefix length', n);
}

function positiveInteger(n: number, what: string): string {
  return Number.isInteger(n) && n > 0 ? String(n) : refuse(what, n);
}

function port(n: number): string {
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? String(n) : refuse('HTTP port', n);
}

function interfaceName(s: string): string {
  return isInterfaceName(s) ? s : refuse('interface', s);
}

/** Six pairs of letters or digits: never more than one field, never a dnsmasq keyword; whether they are hex is dnsmasq's to say. */
function macShape(s: string): string {
  return typeof s === 'string' && /^[0-9A-Za-z]{2}(:[0-9A-Za-z]{2}){5}$/.test(s) ? s : refuse('MAC', s);
}

function stationName(s: string): string {
  return isStationName(s) ? s : refuse('station name', s);
}

/** Absolute, of characters dnsmasq's and chrony's config parsers take literally (no space, quote, #, comma). */
export function isPlainPath(s: unknown): s is string {
  return typeof s === 'string' && /^\/[A-Za-z0-9._/+-]*$/.test(s) && !s.split('/').includes('..');
}

function path(s: string, what: string): string {
  return isPlainPath(s) ? s : refuse(what, s);
}
