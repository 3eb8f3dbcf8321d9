/** The server's view of its LAN neighbours (the ARP table). */
export interface Neighbours {
  /** The Ethernet address last seen for an IPv4 address, if any. */
  macOf(address: string): Promise<string | undefined>;
}
