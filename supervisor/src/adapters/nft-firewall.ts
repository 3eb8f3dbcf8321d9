import type { FirewallSpec } from '../domain/firewall.js';
import type { Firewall } from '../ports/firewall.js';
import { renderFirewall, renderFirewallRemoval } from '../render/firewall.js';
import { NftRunner, type NftOptions } from './nft/nft-runner.js';

export type NftFirewallOptions = NftOptions;

/** The console guard and forwards: the kernel takes the whole table or none of it. */
export class NftFirewall implements Firewall {
  readonly #nft: NftRunner;

  constructor(options: NftFirewallOptions = {}) {
    this.#nft = new NftRunner(options);
  }

  async apply(spec: FirewallSpec): Promise<void> {
    await this.#nft.apply(renderFirewall(spec), `cannot apply firewall table ${spec.table}`);
  }

  async remove(table: string): Promise<void> {
    await this.#nft.apply(renderFirewallRemoval(table), `cannot remove firewall table ${table}`);
  }
}
