import { TabulaError } from '../domain/errors.js';
import { isInterfaceName } from '../domain/station-lan.js';

/**
 * The systemd-networkd unit that keeps networkd off the station LAN's
 * interface: the supervisor gives that interface its address and serves
 * DHCP on it, and networkd, which runs DHCP on the appliance's other wired
 * interfaces (the management network), must neither ask for an address there
 * nor remove the supervisor's. networkd takes the first unit (by file name)
 * that matches a link, so this one, named to sort first, wins.
 */
export function renderUnmanagedLink(iface: string, why: string): string {
  if (!isInterfaceName(iface)) throw new TabulaError('invalid-argument', `not an interface name: ${JSON.stringify(iface)}`);
  return [
    `# Written at boot by tabula-network-units: ${why.replace(/[\r\n]+/g, ' ')}.`,
    '[Match]',
    `Name=${iface}`,
    '',
    '[Link]',
    'Unmanaged=yes',
    '',
  ].join('\n');
}

/** The unit's file name: before the appliance's own 80-tabula-management.network. */
export const UNMANAGED_LINK_FILE = '10-tabula-stations.network';
