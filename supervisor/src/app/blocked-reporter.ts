import { asTabulaError } from '../domain/errors.js';
import type { Logger } from '../ports/logger.js';
import type { VmNetwork } from '../ports/vm-network.js';

/**
 * Tells the journal, at most once per period and VM, how many of a VM's
 * packets the whitelist stopped since the last report (`event=vm-blocked`),
 * so staff see that a portal needs more than the list allows. The kernel's
 * own log (prefix "tabula-blocked ", rate-limited) has the destinations.
 */
export class BlockedReporter {
  readonly #network: VmNetwork;
  readonly #table: string;
  readonly #logger: Logger;
  readonly #seen = new Map<string, number>();

  constructor(network: VmNetwork, table: string, logger: Logger) {
    this.#network = network;
    this.#table = table;
    this.#logger = logger;
  }

  /** One look at the counters; call it every period. */
  async report(): Promise<void> {
    let counts: Map<string, number>;
    try {
      counts = await this.#network.blockedCounts(this.#table);
    } catch (e) {
      this.#logger.debug('vm-blocked-unreadable', { error: asTabulaError(e).message });
      return;
    }
    for (const [address, packets] of counts) {
      const before = this.#seen.get(address) ?? 0;
      // A count lower than before: the address went to a new VM and its count was forgotten.
      const delta = packets >= before ? packets - before : packets;
      this.#seen.set(address, packets);
      if (delta > 0) this.#logger.warning('vm-blocked', { address, packets: delta, total: packets });
    }
    for (const address of [...this.#seen.keys()]) if (!counts.has(address)) this.#seen.delete(address);
  }
}
