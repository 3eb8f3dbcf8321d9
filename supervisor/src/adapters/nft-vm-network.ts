import type { VmNetworkSpec } from '../domain/vm-network.js';
import type { VmNetwork } from '../ports/vm-network.js';
import {
  checkVmTable,
  parseBlockedCounters,
  renderForgetBlocked,
  renderVmNetwork,
  renderVmNetworkRemoval,
  renderWhitelistUpdate,
  VM_SETS,
} from '../render/vm-network.js';
import { NftRunner, type NftOptions } from './nft/nft-runner.js';

export type NftVmNetworkOptions = NftOptions;

/** The VMs' table: each change one nft transaction, all or nothing (see NftRunner). */
export class NftVmNetwork implements VmNetwork {
  readonly #nft: NftRunner;

  constructor(options: NftVmNetworkOptions = {}) {
    this.#nft = new NftRunner(options);
  }

  async apply(spec: VmNetworkSpec): Promise<void> {
    await this.#nft.apply(renderVmNetwork(spec), `cannot apply VM network table ${spec.table}`);
  }

  async setWhitelist(spec: VmNetworkSpec, options: { readonly forgetResolved?: boolean } = {}): Promise<void> {
    await this.#nft.apply(renderWhitelistUpdate(spec, options), `cannot update the whitelist in table ${spec.table}`);
  }

  async blockedCounts(table: string): Promise<Map<string, number>> {
    checkVmTable(table);
    const stdout = await this.#nft.exec(['-j', 'list', 'set', 'inet', table, VM_SETS.blocked], `cannot read the blocked counts of table ${table}`);
    return parseBlockedCounters(stdout);
  }

  async forgetBlocked(table: string, addresses: readonly string[]): Promise<void> {
    if (addresses.length === 0) return;
    await this.#nft.apply(renderForgetBlocked(table, addresses), `cannot reset blocked counts in table ${table}`);
  }

  async remove(table: string): Promise<void> {
    await this.#nft.apply(renderVmNetworkRemoval(table), `cannot remove VM network table ${table}`);
  }
}
