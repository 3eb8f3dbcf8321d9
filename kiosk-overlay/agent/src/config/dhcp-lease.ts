import { isIpv4, notAServer } from '../domain/ipv4.js';

/**
 * What a station takes from its DHCP lease: where the Tabula server is.
 *
 * The lease is systemd-networkd's file `/run/systemd/netif/leases/IFINDEX`
 * (`dhcp_lease_save()` in systemd's src/libsystemd-network/sd-dhcp-lease.c):
 * `KEY=value` lines under a `# This is private data. Do not parse.` comment,
 * among them `SERVER_ADDRESS=` (the DHCP server identifier) and each
 * site-specific option 224–254 the .network file asked for (`RequestOptions=`)
 * as `OPTION_224=` followed by the option's bytes in lower-case hex. It is the
 * only place networkd keeps option 224, so the station reads it despite the
 * comment. The format was checked against systemd 252's networkd (the test
 * host's: the integration test reads what it writes) and the sources of the
 * later releases up to trixie's; systemd's development branch has moved the
 * file to JSON: such a file is named in the log and gives no server, never a
 * wrong one.
 *
 * The server's dnsmasq sends option 224 as `http://ADDRESS:PORT/`, its station
 * HTTP endpoint (supervisor/src/render/dnsmasq-stations.ts). Parsing is pure:
 * the caller reads the files.
 */
export const STATION_URL_OPTION = 224;

export interface DhcpLease {
  /** The lease file, for messages. */
  readonly origin: string;
  /** The server: the host of option 224's URL, else the DHCP server identifier; undefined when the lease names no usable one. */
  readonly serverAddress?: string;
  /** The port of option 224's URL (80 when it names none); undefined without a usable option 224. */
  readonly httpPort?: number;
  /** Which part of the lease named the server. */
  readonly serverFrom?: 'option-224' | 'server-identifier';
  /** What in the lease was set aside, and what was taken instead: one sentence each, for the log. */
  readonly notes: readonly string[];
}

export function parseNetworkdLease(origin: string, text: string): DhcpLease {
  if (text.trimStart().startsWith('{')) {
    return { origin, notes: [`${origin}: a JSON lease (as later systemd versions write) is not read: the lease names no server`] };
  }
  const keys = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, m[2]!);
  }

  const option = keys.get(`OPTION_${STATION_URL_OPTION}`);
  const url = option === undefined ? { problem: `no DHCP option ${STATION_URL_OPTION} (the server's station URL)` } : stationUrl(option);
  if ('serverAddress' in url) return { origin, serverAddress: url.serverAddress, httpPort: url.httpPort, serverFrom: 'option-224', notes: url.notes.map((n) => `${origin}: ${n}`) };

  const identifier = keys.get('SERVER_ADDRESS');
  const none = (why: string): DhcpLease => ({ origin, notes: [`${origin}: ${url.problem}, and ${why}: the lease names no server`] });
  if (identifier === undefined) return none('there is no SERVER_ADDRESS either');
  const problem = serverProblem(identifier);
  if (problem !== undefined) return none(`SERVER_ADDRESS ${problem}`);
  return { origin, serverAddress: identifier, serverFrom: 'server-identifier', notes: [`${origin}: ${url.problem}: the server is the DHCP server, SERVER_ADDRESS=${identifier}`] };
}

/**
 * The lease that names the server when the station has several (one per
 * interface, in `leases` order): the first with option 224, else the first
 * naming a server at all, else the first (whose notes say why it names none).
 */
export function chooseLease(leases: readonly DhcpLease[]): DhcpLease | undefined {
  return leases.find((l) => l.serverFrom === 'option-224') ?? leases.find((l) => l.serverAddress !== undefined) ?? leases[0];
}

/** What a lease sets, in station.conf's key names, with its origin for messages; `leaseDir` names where none was found. */
export function leaseValues(lease: DhcpLease | undefined, leaseDir: string): { origin: string; values: Record<string, string> } {
  if (lease === undefined) return { origin: `no DHCP lease in ${leaseDir}`, values: {} };
  if (lease.serverAddress === undefined) return { origin: `${lease.origin} (names no server)`, values: {} };
  const values: Record<string, string> = { server_ip: lease.serverAddress };
  if (lease.httpPort !== undefined) values['http_port'] = String(lease.httpPort);
  const what = lease.serverFrom === 'option-224' ? `DHCP option ${STATION_URL_OPTION}` : 'DHCP server identifier';
  return { origin: `${lease.origin} (${what})`, values };
}

type UrlResult = { serverAddress: string; httpPort: number; notes: string[] } | { problem: string };

/** Option 224's bytes (hex) as the server's address and HTTP port. */
function stationUrl(hex: string): UrlResult {
  const shown = hex.length > 40 ? `${hex.slice(0, 40)}…` : hex;
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) return { problem: `OPTION_${STATION_URL_OPTION}=${shown} is not hex` };
  const bytes = hex.match(/../g)!.map((b) => parseInt(b, 16));
  // Some servers end a string option with a NUL; nothing else outside printable ASCII belongs in a URL.
  while (bytes.at(-1) === 0) bytes.pop();
  if (bytes.some((b) => b < 0x21 || b > 0x7e)) return { problem: `option ${STATION_URL_OPTION} (${shown}) is not a URL: it has bytes outside printable ASCII` };
  const url = String.fromCharCode(...bytes);
  const quoted = JSON.stringify(url.length > 80 ? `${url.slice(0, 80)}…` : url);
  const m = /^http:\/\/([^/?#:]*)(?::(\d{1,5}))?(\/[^?#]*)?(?:[?#].*)?$/i.exec(url);
  if (!m) return { problem: `option ${STATION_URL_OPTION} ${quoted} is not an http://ADDRESS[:PORT]/ URL` };
  const [, host = '', portText, path = '/'] = m;
  const why = serverProblem(host);
  if (why !== undefined) return { problem: `option ${STATION_URL_OPTION} ${quoted}: ${why}` };
  const httpPort = portText === undefined ? 80 : Number(portText);
  if (!(httpPort >= 1 && httpPort <= 65535)) return { problem: `option ${STATION_URL_OPTION} ${quoted}: port ${portText} is not a port (1-65535)` };
  const notes = path === '/' ? [] : [`option ${STATION_URL_OPTION} ${quoted}: the path ${path} is ignored (the station endpoint is at the server's root)`];
  return { serverAddress: host, httpPort, notes };
}

/** Why `address` cannot be the server, or undefined when it can. */
function serverProblem(address: string): string | undefined {
  const shown = JSON.stringify(address.length > 40 ? `${address.slice(0, 40)}…` : address);
  if (!isIpv4(address)) return `${shown} is not an IPv4 address (a station has no DNS)`;
  const why = notAServer(address);
  return why === undefined ? undefined : `${address} ${why}`;
}
