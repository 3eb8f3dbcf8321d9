import { TabulaError } from '../domain/errors.js';
import { isIpv4 } from '../domain/firewall.js';
import { ipv4String, isInterfaceName, isNtpServer, subnetOf, type StationLanSpec } from '../domain/station-lan.js';
import { isPlainPath } from './dnsmasq-stations.js';

export interface ChronyPaths {
  /** chronyd checks it to refuse a second instance: private to this chronyd, so a system chronyd never counts. */
  readonly pidFile: string;
  /** Only worth it with upstream servers; must be writable by chronyd's user (_chrony), not only root. */
  readonly driftFile?: string;
  /** Directory for the Unix command socket (for `chronyc -h DIR/chronyd.sock`); without one there is no command socket at all. */
  readonly socketDir?: string;
}

/**
 * chronyd as the NTP server of the station subnet and of nothing else:
 *
 * - `bindaddress` + `binddevice`: the NTP socket exists only on the server's
 *   LAN address and interface; `allow` opens it to the subnet, and chrony
 *   denies every other client by default.
 * - `cmdport 0` and `bindcmdaddress /` (or a socket in `socketDir`): neither
 *   the UDP command port nor the default /run/chrony/chronyd.sock, so it never
 *   clashes with, or takes the socket of, a system chronyd; nor with its PID
 *   file (`pidfile` is private).
 * - `local stratum 8`: serves the server's clock even when it never reached
 *   an upstream server (the appliance may have no Internet). Stratum 8 is
 *   one any real source beats, should a station have one too.
 * - `server … iburst` only for configured upstream servers; no pool, no RTC,
 *   no `makestep`, no `rtcsync`: nothing that concerns the clock itself. Run
 *   with `chronyd -x` it never adjusts the system clock (keeping the host's
 *   time right is the system's own NTP client's job); it serves the time as
 *   the host has it.
 *
 * Every value is checked here (addresses, host names, plain paths), so no
 * spec can add a directive.
 */
export function renderStationChrony(spec: StationLanSpec, paths: ChronyPaths): string {
  const server = isIpv4(spec.address) ? spec.address : refuse('server address', spec.address);
  const prefix = Number.isInteger(spec.prefixLength) && spec.prefixLength >= 0 && spec.prefixLength <= 32 ? spec.prefixLength : refuse('prefix length', spec.prefixLength);
  const { network } = subnetOf(server, prefix);
  const lines = [
    '# Written by the Tabula supervisor for the station LAN; changes here are overwritten.',
    `bindaddress ${server}`,
    `binddevice ${isInterfaceName(spec.interface) ? spec.interface : refuse('interface', spec.interface)}`,
    'port 123',
    'cmdport 0',
    `bindcmdaddress ${paths.socketDir === undefined ? '/' : `${plainPath(paths.socketDir, 'socket directory').replace(/\/+$/, '')}/chronyd.sock`}`,
    `pidfile ${plainPath(paths.pidFile, 'PID file')}`,
    `allow ${ipv4String(network)}/${prefix}`,
    'local stratum 8',
  ];
  if (paths.driftFile !== undefined) lines.push(`driftfile ${plainPath(paths.driftFile, 'drift file')}`);
  for (const u of spec.ntpUpstream ?? []) lines.push(`server ${isNtpServer(u) ? u : refuse('NTP upstream', u)} iburst`);
  return lines.join('\n') + '\n';
}

function plainPath(s: string, what: string): string {
  return isPlainPath(s) ? s : refuse(what, s);
}

function refuse(what: string, value: unknown): never {
  throw new TabulaError('config-invalid', `station LAN: ${what} ${JSON.stringify(value) ?? String(value)} cannot be written into a chrony config`);
}
