import { ipv4Number, isIpv4 } from './firewall.js';

/**
 * What the server offers on the station LAN: DHCP (dnsmasq) and, when `ntp`,
 * time (chrony). The whole configuration of both daemons is a function of this
 * value. IPv4 only, like the rest of the station LAN.
 */
export interface StationLanSpec {
  /** The server's station-facing interface. */
  readonly interface: string;
  /** The server's own address on it (e.g. 169.254.24.1): DHCP server, NTP server, HTTP endpoint. */
  readonly address: string;
  /** The station subnet is `address/prefixLength`. */
  readonly prefixLength: number;
  /** Addresses handed to stations without a reservation (inclusive). */
  readonly dhcpRange: { readonly from: string; readonly to: string };
  readonly leaseSeconds: number;
  /** Fixed addresses and names for known stations, by MAC; outside `dhcpRange` (see stationLanProblems). */
  readonly reservations: ReadonlyArray<StationReservation>;
  /** Serve NTP to the subnet, and tell stations (DHCP option 42) to use it. */
  readonly ntp: boolean;
  /** Upstream NTP servers (addresses or host names) for the server's own NTP; none: serve the local clock. */
  readonly ntpUpstream?: readonly string[];
  /** Port of the server's HTTP endpoint for stations, announced in DHCP option 224 (see render/dnsmasq-stations). */
  readonly httpPort?: number;
}

export interface StationReservation {
  /** `xx:xx:xx:xx:xx:xx`, any case. */
  readonly mac: string;
  readonly address: string;
  /** The station's name: also its DHCP host name (option 12). */
  readonly name: string;
}

/** One DHCP lease as dnsmasq records it. */
export interface Lease {
  /** Lower case `xx:xx:xx:xx:xx:xx`. */
  readonly mac: string;
  readonly address: string;
  /** The reservation's name, or the host name the station sent; absent when neither. */
  readonly name?: string;
  /** When the lease ends, ms since the epoch; `Infinity` for a lease without end. */
  readonly expiresAt: number;
}

export const LEASE_SECONDS_MIN = 120;
export const LEASE_SECONDS_MAX = 365 * 24 * 3600;
export const NTP_UPSTREAM_MAX = 8;

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const NAME = /^[A-Za-z0-9-]{1,32}$/;
/** Linux allows more, but nothing else is needed and these are safe in any config file or argv. */
const INTERFACE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const LABEL = '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(\\.${LABEL})*$`);

export function isMac(s: unknown): s is string {
  return typeof s === 'string' && MAC.test(s);
}

export function isInterfaceName(s: unknown): s is string {
  return typeof s === 'string' && INTERFACE.test(s);
}

/**
 * A station name: `[A-Za-z0-9-]{1,32}`, not starting or ending with `-`, and
 * not something dnsmasq's `dhcp-host=` reads as anything but a name: a number,
 * a number with a time unit (`10m`: a lease time), `infinite` or `ignore`.
 */
export function isStationName(s: unknown): s is string {
  return (
    typeof s === 'string' &&
    NAME.test(s) &&
    !s.startsWith('-') &&
    !s.endsWith('-') &&
    !/^[0-9]+[smhdw]?$/i.test(s) &&
    !['infinite', 'ignore'].includes(s.toLowerCase())
  );
}

/** An NTP server for chrony's `server` line: an IPv4 address or a DNS name. */
export function isNtpServer(s: unknown): s is string {
  return typeof s === 'string' && (isIpv4(s) || (HOST_NAME.test(s) && !/^[0-9.]+$/.test(s)));
}

/** The subnet `address/prefixLength` as numbers: network, broadcast and mask (unsigned 32-bit). */
export function subnetOf(address: string, prefixLength: number): { network: number; broadcast: number; mask: number } {
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  const network = (ipv4Number(address) & mask) >>> 0;
  return { network, broadcast: (network | ~mask) >>> 0, mask };
}

export function ipv4String(n: number): string {
  return [24, 16, 8, 0].map((shift) => String((n >>> shift) & 255)).join('.');
}

function isPrefixLength(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 8 && n <= 30;
}

/**
 * Everything wrong with `spec`, one sentence each; empty when it is good.
 * Pure, and tolerant of values that do not match the type (a spec may come
 * from a file).
 *
 * Reservations must lie inside the subnet but OUTSIDE `dhcpRange`: a reserved
 * address inside the range could already be leased to another station when
 * its own station asks, which would then get some other address until that
 * lease ended. Kept apart, a reserved station always gets its address.
 */
export function stationLanProblems(spec: StationLanSpec): string[] {
  const problems: string[] = [];
  const s = spec as Partial<Record<keyof StationLanSpec, unknown>>;

  if (!isInterfaceName(s.interface)) problems.push(`interface ${show(s.interface)} is not an interface name`);

  const serverOk = isIpv4(s.address);
  if (!serverOk) problems.push(`address ${show(s.address)} is not an IPv4 address`);
  const prefixOk = isPrefixLength(s.prefixLength);
  if (!prefixOk) problems.push(`prefix length ${show(s.prefixLength)} is not an integer from 8 to 30`);

  const subnet = serverOk && prefixOk ? subnetOf(s.address as string, s.prefixLength as number) : undefined;
  const cidr = subnet === undefined ? '' : `${ipv4String(subnet.network)}/${String(s.prefixLength)}`;
  /** Why `a` cannot be a host address in the subnet, if it cannot. */
  const outside = (a: string): string | undefined => {
    if (subnet === undefined) return undefined;
    const n = ipv4Number(a);
    if (((n & subnet.mask) >>> 0) !== subnet.network) return `is outside the subnet ${cidr}`;
    if (n === subnet.network) return `is the network address of ${cidr}`;
    if (n === subnet.broadcast) return `is the broadcast address of ${cidr}`;
    return undefined;
  };
  if (serverOk) {
    const why = outside(s.address as string);
    if (why !== undefined) problems.push(`address ${s.address as string} ${why}`);
  }

  const range = s.dhcpRange as { from?: unknown; to?: unknown } | undefined;
  let rangeNumbers: { from: number; to: number } | undefined;
  if (typeof range !== 'object' || range === null) {
    problems.push('the DHCP range is missing');
  } else {
    let ok = true;
    for (const end of ['from', 'to'] as const) {
      const a = range[end];
      if (!isIpv4(a)) {
        problems.push(`DHCP range ${end} ${show(a)} is not an IPv4 address`);
        ok = false;
        continue;
      }
      const why = outside(a);
      if (why !== undefined) {
        problems.push(`DHCP range ${end} ${a} ${why}`);
        ok = false;
      }
    }
    if (ok) {
      const from = ipv4Number(range.from as string);
      const to = ipv4Number(range.to as string);
      if (from > to) problems.push(`DHCP range from ${range.from as string} comes after to ${range.to as string}`);
      else rangeNumbers = { from, to };
      if (serverOk && from <= ipv4Number(s.address as string) && ipv4Number(s.address as string) <= to) {
        problems.push(`the DHCP range ${range.from as string}–${range.to as string} contains the server address ${s.address as string}`);
      }
    }
  }

  const lease = s.leaseSeconds;
  if (typeof lease !== 'number' || !Number.isInteger(lease) || lease < LEASE_SECONDS_MIN || lease > LEASE_SECONDS_MAX) {
    problems.push(`lease time ${show(lease)} is not a whole number of seconds from ${LEASE_SECONDS_MIN} to ${LEASE_SECONDS_MAX}`);
  }

  if (!Array.isArray(s.reservations)) {
    problems.push('reservations is not a list');
  } else {
    const macs = new Map<string, number>();
    const addresses = new Map<string, number>();
    const names = new Map<string, number>();
    (s.reservations as unknown[]).forEach((r, i) => {
      const label = `reservation ${i + 1}`;
      if (typeof r !== 'object' || r === null) {
        problems.push(`${label} is not a table`);
        return;
      }
      const { mac, address, name } = r as Partial<Record<keyof StationReservation, unknown>>;
      if (!isMac(mac)) problems.push(`${label}: MAC ${show(mac)} is not of the form xx:xx:xx:xx:xx:xx (hex)`);
      else if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) problems.push(`${label}: MAC ${mac} is a group (multicast) address, no station's`);
      else duplicate(macs, mac.toLowerCase(), i, (j) => problems.push(`${label}: MAC ${mac} is already reserved by reservation ${j + 1}`));

      if (!isIpv4(address)) {
        problems.push(`${label}: address ${show(address)} is not an IPv4 address`);
      } else {
        const why = outside(address);
        if (why !== undefined) problems.push(`${label}: address ${address} ${why}`);
        else if (serverOk && address === s.address) problems.push(`${label}: address ${address} is the server's`);
        else if (rangeNumbers !== undefined && rangeNumbers.from <= ipv4Number(address) && ipv4Number(address) <= rangeNumbers.to) {
          problems.push(`${label}: address ${address} is inside the DHCP range (reserve addresses outside it)`);
        }
        duplicate(addresses, address, i, (j) => problems.push(`${label}: address ${address} is already reserved by reservation ${j + 1}`));
      }

      if (!isStationName(name)) {
        problems.push(`${label}: name ${show(name)} is not 1–32 letters, digits and inner hyphens (and not a number)`);
      } else {
        duplicate(names, name.toLowerCase(), i, (j) => problems.push(`${label}: name ${name} is already used by reservation ${j + 1}`));
      }
    });
  }

  if (typeof s.ntp !== 'boolean') problems.push(`ntp ${show(s.ntp)} is not true or false`);

  if (s.ntpUpstream !== undefined) {
    if (!Array.isArray(s.ntpUpstream)) problems.push('NTP upstream is not a list');
    else {
      if (s.ntpUpstream.length > NTP_UPSTREAM_MAX) problems.push(`more than ${NTP_UPSTREAM_MAX} NTP upstream servers`);
      const seen = new Set<string>();
      for (const u of s.ntpUpstream as unknown[]) {
        if (!isNtpServer(u)) problems.push(`NTP upstream ${show(u)} is not an IPv4 address or a host name`);
        else if (seen.has(u.toLowerCase())) problems.push(`NTP upstream ${u} is listed twice`);
        else seen.add(u.toLowerCase());
      }
    }
  }

  const port = s.httpPort;
  if (port !== undefined && (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)) {
    problems.push(`HTTP port ${show(port)} is not a port number`);
  }
  return problems;
}

function duplicate(seen: Map<string, number>, key: string, index: number, report: (first: number) => void): void {
  const first = seen.get(key);
  if (first !== undefined) report(first);
  else seen.set(key, index);
}

function show(v: unknown): string {
  if (v === undefined) return '(missing)';
  const text = typeof v === 'string' ? JSON.stringify(v) : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * dnsmasq's lease file: one lease per line, `<expiry, epoch seconds (0: never)>
 * <mac> <ip> <host name or *> <client id or *>`. Anything else (the `duid`
 * line and DHCPv6 leases, non-Ethernet hardware addresses, a line cut short by
 * a crash) is skipped. Sorted by address.
 */
export function parseLeases(text: string): Lease[] {
  const leases: Lease[] = [];
  for (const line of text.split('\n')) {
    // The client id is sometimes left off by hand-written or older files; more fields is something else.
    const [expiry, mac, address, name, _clientId, ...rest] = line.trim().split(/\s+/);
    if (expiry === undefined || mac === undefined || address === undefined || name === undefined || rest.length > 0) continue;
    if (!/^[0-9]{1,12}$/.test(expiry) || !isMac(mac) || !isIpv4(address)) continue;
    const seconds = Number(expiry);
    leases.push({
      mac: mac.toLowerCase(),
      address,
      ...(name === '*' ? {} : { name }),
      expiresAt: seconds === 0 ? Number.POSITIVE_INFINITY : seconds * 1000,
    });
  }
  return leases.sort((a, b) => ipv4Number(a.address) - ipv4Number(b.address));
}

/** A station as staff see it: from its DHCP lease. */
export interface StationView {
  readonly address: string;
  readonly mac: string;
  readonly name?: string;
  /** When it last asked for (or renewed) its lease: the lease's start, ms since the epoch. */
  readonly lastSeen: number;
  readonly leaseExpires: number;
}

/** The station list from the leases: a lease is renewed halfway, so its start is when the station was last heard. */
export function stationsFromLeases(leases: readonly Lease[], leaseSeconds: number, now: number): StationView[] {
  return leases
    .filter((l) => l.expiresAt > now)
    .map((l) => ({
      address: l.address,
      mac: l.mac,
      ...(l.name === undefined ? {} : { name: l.name }),
      lastSeen: Number.isFinite(l.expiresAt) ? l.expiresAt - leaseSeconds * 1000 : now,
      leaseExpires: l.expiresAt,
    }));
}
