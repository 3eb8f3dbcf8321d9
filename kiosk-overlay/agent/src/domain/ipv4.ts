/**
 * A dotted-quad IPv4 address as people write it (no leading zeros, which some
 * parsers read as octal). The station LAN is IPv4 only, and a station has no
 * DNS: a host name is never a server address.
 */
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

/** Why an IPv4 address cannot be a server the station talks to, or undefined when it can be one. */
export function notAServer(address: string): string | undefined {
  if (address === '0.0.0.0') return 'is no host';
  if (address === '255.255.255.255') return 'is the broadcast address';
  if (address.startsWith('127.')) return 'is this machine (loopback)';
  return undefined;
}
