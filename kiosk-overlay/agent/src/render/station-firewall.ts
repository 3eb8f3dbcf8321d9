// The station's own firewall: the kiosk may talk to its Tabula server on the
// few ports the server offers the stations (docs/station-lan.md,
// docs/station-protocol.md) and to nothing else; nobody may open a connection
// to the kiosk. A visitor who gets a shell, or a program of the session that
// misbehaves, reaches no other host on the LAN and no service the server does
// not mean for stations.
import { StationError } from '../domain/errors.js';
import { isIpv4, notAServer } from '../domain/ipv4.js';

/** The one table the station's rules live in (nothing else on the kiosk adds rules). */
export const STATION_TABLE = 'tabula_station';

/**
 * What the rules depend on: `Pick<StationConfig, …>`, spelled out because
 * render/ imports only domain/ (a StationConfig fits as it is).
 */
export interface FirewallInput {
  /** Undefined while no source names the server (before the first DHCP lease): DHCP only. */
  readonly serverAddress?: string | undefined;
  readonly signalPort: number;
  readonly spicePort: number;
  readonly httpPort: number;
}

/** A flow the station may start (or, for `in`, accept unasked). */
export interface StationFlow {
  /** Names the rule: its nft comment, and the counter tests and operators read. */
  readonly name: string;
  readonly direction: 'in' | 'out';
  readonly protocol: 'tcp' | 'udp';
  /** Destination addresses; empty: any (only inbound DHCP replies, sent to whatever address the station has, or none yet). */
  readonly to: readonly string[];
  readonly port: number;
  /** Required source port (DHCP's fixed 68/67 pair). */
  readonly fromPort?: number;
  readonly why: string;
}

const BROADCAST = '255.255.255.255';
const DHCP_SERVER_PORT = 67;
const DHCP_CLIENT_PORT = 68;
const NTP_PORT = 123;

/**
 * Every flow a station starts on its own, besides loopback and the answers to
 * these (conntrack): DHCP, and the server's services once the server is known.
 * Without a server (the normal state before the first DHCP lease) only DHCP:
 * it is how the station learns its server.
 */
export function stationFlows(cfg: FirewallInput): readonly StationFlow[] {
  const server = cfg.serverAddress === undefined ? undefined : checkAddress(cfg.serverAddress);
  const dhcp: StationFlow[] = [
    {
      name: 'dhcp-reply',
      direction: 'in',
      protocol: 'udp',
      to: [],
      port: DHCP_CLIENT_PORT,
      fromPort: DHCP_SERVER_PORT,
      why: 'DHCP offers and acks: they come before the station has an address (unicast or broadcast), and conntrack has no entry for them when the client sent from a raw socket. Any sender: the firewall cannot tell the DHCP server from another host, and a raw-socket client sees every reply anyway',
    },
    {
      name: 'dhcp',
      direction: 'out',
      protocol: 'udp',
      to: server === undefined ? [BROADCAST] : [BROADCAST, server],
      port: DHCP_SERVER_PORT,
      fromPort: DHCP_CLIENT_PORT,
      why:
        server === undefined
          ? 'DHCP sent through the kernel: rebinding (broadcast). No server is known yet, so no unicast renewal is allowed; discovery itself goes out through a raw socket, which no firewall sees'
          : 'DHCP sent through the kernel: renewing (unicast to the server, which is the DHCP server) and rebinding (broadcast). Discovery itself goes out through a raw socket, which no firewall sees',
    },
  ];
  if (server === undefined) return dhcp;
  return [
    ...dhcp,
    { name: 'ntp', direction: 'out', protocol: 'udp', to: [server], port: NTP_PORT, why: 'The time, from chrony on the server (DHCP option 42 points there)' },
    { name: 'http', direction: 'out', protocol: 'tcp', to: [server], port: checkPort('httpPort', cfg.httpPort), why: "The server's station endpoint: client.conf and the slideshow" },
    { name: 'signal', direction: 'out', protocol: 'tcp', to: [server], port: checkPort('signalPort', cfg.signalPort), why: "The signal port: asking for a desktop, and the session's control channel (v1)" },
    { name: 'spice', direction: 'out', protocol: 'tcp', to: [server], port: checkPort('spicePort', cfg.spicePort), why: "The Spice forward to the session's VM console (the server opens it for this station only, and only at this port: a READY naming another host or port cannot be followed)" },
  ];
}

/**
 * The ruleset, for `nft -f FILE`. One transaction: the `table` + `delete
 * table` pair makes the table exist and then removes it, so the file applies
 * the same whether or not an older version is loaded, and the old rules are
 * replaced with no moment where neither set is in force.
 */
export function renderStationFirewall(cfg: FirewallInput): string {
  const flows = stationFlows(cfg);
  const rules = (direction: 'in' | 'out') => flows.filter((f) => f.direction === direction).flatMap(flowRule);
  return [
    cfg.serverAddress === undefined
      ? '# Tabula station firewall, generated from the station config: no server known yet, DHCP only.'
      : `# Tabula station firewall, generated from the station config (server ${cfg.serverAddress}).`,
    '# Applied with nft -f as one transaction; re-applying replaces it atomically.',
    `table inet ${STATION_TABLE}`,
    `delete table inet ${STATION_TABLE}`,
    '',
    `table inet ${STATION_TABLE} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    ...common('iif'),
    ...rules('in'),
    '    # Anything else: nobody opens a connection to a kiosk (no remote shell, no',
    "    # service a session's program might start). Counted, to see what is refused.",
    '    counter drop comment "refused"',
    '  }',
    '',
    '  chain output {',
    '    type filter hook output priority filter; policy drop;',
    ...common('oif'),
    ...rules('out'),
    '    # Anything else: no other host on the LAN, no other service of the server,',
    '    # no Internet (the LAN has no router anyway). Counted, to see what is refused.',
    '    counter drop comment "refused"',
    '  }',
    '',
    '  chain forward {',
    '    # A kiosk routes nothing; should forwarding ever be switched on, still nothing.',
    '    type filter hook forward priority filter; policy drop;',
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * What the station gets when its firewall cannot be built (a config that
 * cannot be used, rules nft refused): the same table with no flow at all,
 * only loopback; `reason` goes into a comment. A kiosk that cannot tell which server to
 * trust talks to nobody rather than to everybody (fail closed); fixing the
 * config and applying again replaces it like any other version.
 */
export function renderStationLockdown(reason: string): string {
  const why = reason.replace(/[^\x20-\x7e]/g, '?');
  return [
    '# Tabula station firewall: LOCKDOWN, loopback only. The firewall could not be built:',
    ...wrap(why).map((l) => l.replace(/^ {4}/, '')),
    `table inet ${STATION_TABLE}`,
    `delete table inet ${STATION_TABLE}`,
    '',
    `table inet ${STATION_TABLE} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    iif lo accept comment "loopback"',
    '    counter drop comment "lockdown"',
    '  }',
    '',
    '  chain output {',
    '    type filter hook output priority filter; policy drop;',
    '    oif lo accept comment "loopback"',
    '    counter drop comment "lockdown"',
    '  }',
    '',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The rules before the flows, the same in both directions. */
function common(iface: 'iif' | 'oif'): string[] {
  return [
    '    # Loopback: the agent, the screen and the viewer talk to each other and to the',
    '    # compositor on this machine; none of it leaves it.',
    `    ${iface} lo accept comment "loopback"`,
    '    # The station LAN is IPv4 only: no IPv6 at all, not even link-local or',
    '    # neighbour discovery, so no address the rules below do not know about.',
    '    meta nfproto ipv6 counter drop comment "ipv6"',
    '    # Packets conntrack cannot place (forged, out of window) are never answers. This',
    '    # rule also keeps conntrack in use, which the established rule relies on.',
    '    ct state invalid counter drop comment "invalid"',
    '    # Answers to what the station started, and the ICMP errors that belong to those',
    '    # connections (unreachable, fragmentation needed): no conntrack helper is loaded,',
    '    # so nothing else is ever "related".',
    '    ct state established,related accept comment "established"',
  ];
}

function flowRule(f: StationFlow): string[] {
  const match = [
    ...(f.to.length > 0 ? [`ip daddr ${set(f.to)}`] : []),
    ...(f.fromPort === undefined ? [] : [`${f.protocol} sport ${f.fromPort}`]),
    `${f.protocol} dport ${f.port}`,
  ];
  return [...wrap(`${f.why}.`), `    ${match.join(' ')} counter accept comment "${f.name}"`];
}

/** `why` as `#` comment lines of the chain's indentation, at most ~90 columns. */
function wrap(text: string): string[] {
  const lines: string[] = [];
  let line = '    #';
  for (const word of text.split(' ')) {
    if (line.length + 1 + word.length > 90 && line !== '    #') {
      lines.push(line);
      line = '    #';
    }
    line += ` ${word}`;
  }
  return [...lines, line];
}

function set(values: readonly string[]): string {
  return values.length === 1 ? (values[0] as string) : `{ ${values.join(', ')} }`;
}

/**
 * A dotted-quad IPv4 address, nothing else: the value goes into nft's text
 * and must not be able to add a rule of its own.
 */
function checkAddress(address: string): string {
  if (!isIpv4(address)) throw new StationError('config-invalid', `server address ${JSON.stringify(address)} is not an IPv4 address (the station LAN is IPv4)`);
  const why = notAServer(address);
  if (why !== undefined) throw new StationError('config-invalid', `server address ${address} cannot be a server: it ${why}`);
  return address;
}

function checkPort(key: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new StationError('config-invalid', `${key} ${port} is not a port (1-65535)`);
  return port;
}
