/**
 * Everything the VMs' confinement depends on: the nftables side of the VM
 * network (the resolver side is `render/dnsmasq-vms.ts`). The table is a
 * function of this value; a whitelist change re-renders only the `allow4` set
 * from it (see `render/vm-network.ts`).
 */
export interface VmNetworkSpec {
  /** The nftables table (family inet) Tabula owns entirely. */
  readonly table: string;
  /** The bridge the VMs' taps are plugged into. */
  readonly bridge: string;
  /** The VMs' IPv4 subnet, canonical (`10.88.0.0/24`). */
  readonly subnet: string;
  /** The server's address on the bridge: the VMs' gateway, DHCP and DNS server. */
  readonly serverAddress: string;
  /** Whitelisted address ranges (canonical CIDRs, the `cidr` entries of the whitelist). */
  readonly allow: readonly string[];
  /**
   * Ranges the VMs never reach, whatever the whitelist or DNS says: the
   * station LAN and any other network of the server. The VM subnet and
   * `ALWAYS_FORBIDDEN` (loopback, link-local…) are added by the renderer.
   */
  readonly forbidden: readonly string[];
  /**
   * Seconds an address learnt from DNS stays open after its last new
   * connection (each new connection to it starts the time again).
   */
  readonly resolvedTimeout: number;
  /** Source-NAT the VMs' traffic to the server's own address on the way out. */
  readonly masquerade: boolean;
}
