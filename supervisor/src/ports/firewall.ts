import type { FirewallSpec } from '../domain/firewall.js';

/** The station firewall: one table, always replaced as a whole. */
export interface Firewall {
  /** Makes the table exactly what `spec` describes, in one transaction: on failure the previous table stays. */
  apply(spec: FirewallSpec): Promise<void>;
  /** Deletes the table; an absent table is not an error. */
  remove(table: string): Promise<void>;
}

/** One TCP connection as conntrack sees it, by its original (station) side. */
export interface TrackedFlow {
  readonly source: string;
  readonly sourcePort: number;
}

/**
 * The kernel's connection tracking. Flows are selected by where they really
 * end (after DNAT), so a console's connections are found whichever address the
 * station dialled.
 */
export interface Conntrack {
  /** Established TCP flows whose destination after DNAT is address:port. */
  established(address: string, port: number): Promise<TrackedFlow[]>;
  /**
   * Forgets those flows (only the ones from `source`, if given); none matching is not an error.
   * Remove the forward first: while it is in place, the station's next packet is picked up
   * mid-stream as a new flow and DNATed again, so the session carries on.
   */
  kill(address: string, port: number, source?: string): Promise<void>;
}
