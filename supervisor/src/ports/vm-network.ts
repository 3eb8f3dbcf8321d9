import type { VmNetworkSpec } from '../domain/vm-network.js';

/**
 * The VMs' confinement on the host: one nftables table. The whitelist's names
 * are the resolver's business (the VMs' dnsmasq fills the table's `resolved4`
 * set); this port owns the table, its whitelisted ranges and its counters.
 */
export interface VmNetwork {
  /**
   * Makes the table exactly what `spec` describes, in one transaction: on
   * failure the previous table stays. Addresses learnt from DNS and the blocked
   * counts start afresh; use it at start-up and when the network itself
   * changes, not for whitelist changes.
   */
  apply(spec: VmNetworkSpec): Promise<void>;
  /**
   * Replaces the whitelisted ranges with `spec.allow` in one transaction,
   * leaving the rest of the table (chains, learnt addresses, counters,
   * connections) as it is. `forgetResolved` also empties the learnt addresses,
   * in the same transaction: how a removed name is closed at once. The whole
   * `spec` is validated as `apply` validates it; nothing is applied if any of
   * it is wrong.
   */
  setWhitelist(spec: VmNetworkSpec, options?: { readonly forgetResolved?: boolean }): Promise<void>;
  /** Packets blocked so far per VM address (only addresses with blocked packets appear). */
  blockedCounts(table: string): Promise<Map<string, number>>;
  /** Forgets the counts of these addresses (a VM's address handed to a new VM); unknown ones are no error. */
  forgetBlocked(table: string, addresses: readonly string[]): Promise<void>;
  /** Deletes the table; an absent table is not an error. */
  remove(table: string): Promise<void>;
}
