import { TabulaError } from '../domain/errors.js';
import { ipv4Number, isIpv4 } from '../domain/firewall.js';
import { cidrHas, ipv4Text, parseCidr, whitelistNames, type WhitelistEntry } from '../domain/whitelist.js';
import { checkVmTable, VM_SETS } from './vm-network.js';

/**
 * The VMs' own dnsmasq: DHCP and DNS on the VM bridge, nothing else.
 *
 * How the whitelist reaches DNS. Only whitelisted names resolve; every other
 * name gets NXDOMAIN. That is a choice, for three reasons:
 * - an open resolver is a tunnel: with any name resolvable, a VM can carry
 *   arbitrary traffic through DNS queries to a domain someone controls,
 *   straight past the address filter;
 * - a name that does not resolve fails at once, where a resolved but blocked
 *   address leaves the browser waiting for a connection timeout (pages that
 *   pull in third-party resources would stall);
 * - it is what makes an exact-name entry exact (below).
 * The cost: a range opened by address is reachable by address only; to reach
 * it by name, whitelist the name too.
 *
 * The mechanics, all verified against dnsmasq 2.90 (Debian 12):
 * - `nftset=/#/4#inet#TABLE#resolved4`: every A record dnsmasq gets from
 *   upstream goes into `resolved4` (with the set's timeout) before the answer
 *   leaves. Since only whitelisted names are ever forwarded, only their
 *   addresses land there. (`nftset=` itself matches a domain and all its
 *   subdomains and knows no `*.` form, so it could not tell `example.org` from
 *   `*.example.org`; and it is read only at start-up.)
 * - the names live in a `servers-file`, which dnsmasq re-reads on SIGHUP
 *   (clearing its cache too): a whitelist change needs no restart, DHCP and
 *   leases are untouched. In it, `server=/#/` (no address: answered locally,
 *   NXDOMAIN) refuses everything; `server=/NAME/UPSTREAM` forwards NAME and
 *   its subdomains; for an exact entry, `server=/*.NAME/` takes the subdomains
 *   back (in dnsmasq 2.90 the `*.` form wins over the plain one for
 *   subdomains, and a longer plain domain wins over both).
 * - answers handed out and cached live at most `dnsTtl` seconds
 *   (`max-ttl`, `max-cache-ttl`): dnsmasq re-adds an address to the set only
 *   when it forwards a query, never on a cache hit, so the set's timeout
 *   (`VmNetworkSpec.resolvedTimeout`) must stay well above twice this.
 * - AAAA records are removed (`filter-AAAA`): the VM network is IPv4 only.
 *
 * dnsmasq drops to user nobody after start-up and reads the servers file
 * again as that user: it must be readable by it (0644, in a directory it can
 * enter).
 */
export interface DnsmasqVmsSpec {
  /** The VM bridge; dnsmasq binds its addresses only (never loopback: other dnsmasqs run on this host). */
  readonly bridge: string;
  /** The VMs' subnet, canonical (`10.88.0.0/24`). */
  readonly subnet: string;
  /** The server's address on the bridge: gateway and DNS server handed to the VMs. */
  readonly serverAddress: string;
  /** Addresses leased (inclusive); by default the largest run of the subnet's host addresses beside the server's. */
  readonly dhcpRange?: { readonly from: string; readonly to: string };
  readonly leaseSeconds: number;
  /** Where names are resolved: IPv4 addresses, optionally `#port`. */
  readonly upstreams: readonly string[];
  /** The nftables table (family inet) holding the `resolved4` set. */
  readonly table: string;
  readonly leaseFile: string;
  /** The servers file (see {@link renderDnsmasqVmsServers}); re-read on SIGHUP. */
  readonly serversFile: string;
  /** Where dnsmasq writes its PID; none when absent. */
  readonly pidFile?: string;
  /** Longest time (seconds) an answer is handed out for and cached. */
  readonly dnsTtl: number;
  /** Log every query (staff see which names a portal asks for); noisy. */
  readonly logQueries?: boolean;
}

const INTERFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
/** Absolute, and nothing dnsmasq's config parser treats specially (quotes, backslashes, `#`, `,`, whitespace). */
const SAFE_PATH = /^\/[A-Za-z0-9._/+-]*$/;

/** The main configuration: static for the life of the VM network. */
export function renderDnsmasqVms(spec: DnsmasqVmsSpec): string {
  if (!INTERFACE_NAME.test(spec.bridge)) throw invalid(`VM bridge ${JSON.stringify(spec.bridge)} is not an interface name`);
  const subnet = parseCidr(spec.subnet);
  if (subnet === undefined) throw invalid(`VM subnet ${JSON.stringify(spec.subnet)} is not a canonical IPv4 range (a.b.c.d/len)`);
  if (subnet.length < 16 || subnet.length > 30) throw invalid(`VM subnet ${spec.subnet} must be a /16 to a /30`);
  const size = 2 ** (32 - subnet.length);
  const first = subnet.network + 1;
  const last = subnet.network + size - 2;
  if (!cidrHas(subnet, spec.serverAddress) || !inRange(ipv4Number(spec.serverAddress), first, last)) {
    throw invalid(`server address ${JSON.stringify(spec.serverAddress)} is not a host address of the VM subnet ${spec.subnet}`);
  }
  const server = ipv4Number(spec.serverAddress);
  const range = spec.dhcpRange ?? defaultRange(first, last, server);
  if (!isIpv4(range.from) || !isIpv4(range.to)) throw invalid(`DHCP range ${range.from}-${range.to} is not two IPv4 addresses`);
  const from = ipv4Number(range.from);
  const to = ipv4Number(range.to);
  if (!inRange(from, first, last) || !inRange(to, first, last) || from > to) {
    throw invalid(`DHCP range ${range.from}-${range.to} must be host addresses of ${spec.subnet}, lowest first`);
  }
  if (inRange(server, from, to)) throw invalid(`DHCP range ${range.from}-${range.to} holds the server address ${spec.serverAddress}`);
  if (!Number.isInteger(spec.leaseSeconds) || spec.leaseSeconds < 120 || spec.leaseSeconds > 7 * 24 * 3600) {
    throw invalid(`lease time ${String(spec.leaseSeconds)} must be a whole number of seconds from 120 to a week`);
  }
  if (!Number.isInteger(spec.dnsTtl) || spec.dnsTtl < 1 || spec.dnsTtl > 3600) {
    throw invalid(`DNS TTL ${String(spec.dnsTtl)} must be a whole number of seconds from 1 to 3600`);
  }
  checkVmTable(spec.table);
  for (const [what, path] of [
    ['lease file', spec.leaseFile],
    ['servers file', spec.serversFile],
    ['PID file', spec.pidFile],
  ] as const) {
    if (path !== undefined && !SAFE_PATH.test(path)) throw invalid(`${what} ${JSON.stringify(path)} must be an absolute path of letters, digits and ._/+-`);
  }
  const netmask = ipv4Text(2 ** 32 - size);

  return lines([
    `# Tabula: DHCP and DNS for the VMs on ${spec.bridge}. Generated; changes are overwritten.`,
    `interface=${spec.bridge}`,
    'except-interface=lo',
    'bind-interfaces',
    'port=53',
    // DNS: whitelisted names only, through the servers file; their addresses into the set.
    'no-resolv',
    'no-hosts',
    `servers-file=${spec.serversFile}`,
    `nftset=/#/4#inet#${spec.table}#${VM_SETS.resolved}`,
    `max-ttl=${spec.dnsTtl}`,
    `max-cache-ttl=${spec.dnsTtl}`,
    'filter-AAAA',
    // DHCP
    `dhcp-range=${range.from},${range.to},${netmask},${spec.leaseSeconds}`,
    `dhcp-option=option:router,${spec.serverAddress}`,
    `dhcp-option=option:dns-server,${spec.serverAddress}`,
    'dhcp-authoritative',
    // Clones share one host name: publishing it would only leak which VMs exist.
    'dhcp-ignore-names',
    // The VMs' firewall drops their echo replies to the server, so the check would only delay leases.
    'no-ping',
    `dhcp-leasefile=${spec.leaseFile}`,
    `pid-file=${spec.pidFile ?? ''}`,
    ...(spec.logQueries === true ? ['log-queries'] : []),
  ]);
}

/**
 * The servers file: which names the VMs may resolve, and where. Re-read by
 * dnsmasq on SIGHUP. Only the `name` entries of `whitelist` matter here.
 */
export function renderDnsmasqVmsServers(upstreams: readonly string[], whitelist: readonly WhitelistEntry[]): string {
  const servers = upstreams.map(checkUpstream);
  const names = whitelistNames(whitelist);
  if (names.length > 0 && servers.length === 0) throw invalid('whitelisted names need at least one upstream DNS server');
  // A wildcard covers its own name and everything below it.
  const wildcards = names.filter((n) => n.subdomains).map((n) => n.name);
  const coveredByOther = (name: string, isWildcard: boolean) => wildcards.some((w) => (w === name && !isWildcard) || name.endsWith(`.${w}`));
  const out = [
    '# Tabula: the names the VMs may resolve. Generated; changes are overwritten. Re-read on SIGHUP.',
    '# Everything not named below: NXDOMAIN.',
    'server=/#/',
  ];
  for (const n of names) {
    if (coveredByOther(n.name, n.subdomains)) continue;
    for (const s of servers) out.push(`server=/${n.name}/${s}`);
    if (!n.subdomains) out.push(`server=/*.${n.name}/`);
  }
  return lines(out);
}

function checkUpstream(text: string): string {
  const m = /^([0-9.]+)(?:#([0-9]{1,5}))?$/.exec(typeof text === 'string' ? text : '');
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (m === null || !isIpv4(m[1]) || port < 1 || port > 65535 || m[1] === '0.0.0.0') {
    throw invalid(`upstream DNS server ${JSON.stringify(text)} must be an IPv4 address, optionally with #port`);
  }
  return text;
}

/** The larger of the runs of host addresses below and above the server's. */
function defaultRange(first: number, last: number, server: number): { from: string; to: string } {
  const below = server - first;
  const above = last - server;
  if (below <= 0 && above <= 0) throw invalid('the VM subnet has no address to lease besides the server');
  return above >= below ? { from: ipv4Text(server + 1), to: ipv4Text(last) } : { from: ipv4Text(first), to: ipv4Text(server - 1) };
}

function inRange(n: number, from: number, to: number): boolean {
  return n >= from && n <= to;
}

function lines(list: readonly string[]): string {
  for (const l of list) {
    // Belt and braces: every value above is validated; a newline would be a second option.
    if (/[\r\n\0]/.test(l)) throw new TabulaError('internal', 'a dnsmasq option would span lines');
  }
  return `${list.join('\n')}\n`;
}

function invalid(message: string): TabulaError {
  return new TabulaError('invalid-argument', message);
}
