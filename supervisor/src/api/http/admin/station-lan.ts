/**
 * Whether a connection reached the server on its station LAN address (IPv4,
 * or the same as IPv4-mapped IPv6 on a dual-stack socket): those are turned
 * away, since the admin page is for the management side only.
 */
export function reachedOnStationLan(localAddress: string, stationAddress: string | undefined): boolean {
  if (stationAddress === undefined) return false;
  return localAddress.replace(/^::ffff:/i, '') === stationAddress;
}
