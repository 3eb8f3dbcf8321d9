import { renderAdminGuard, renderAdminGuardRemoval } from '../render/admin-guard.js';
import { NftRunner, type NftOptions } from './nft/nft-runner.js';

/** Keeps the admin ports shut on the station interface (its own nftables table). */
export class NftAdminGuard {
  readonly #nft: NftRunner;
  readonly #table: string;

  constructor(table: string, options: NftOptions = {}) {
    this.#nft = new NftRunner(options);
    this.#table = table;
  }

  get table(): string {
    return this.#table;
  }

  async apply(lanInterface: string, ports: readonly number[]): Promise<void> {
    await this.#nft.apply(renderAdminGuard(this.#table, lanInterface, ports), `cannot apply firewall table ${this.#table}`);
  }

  async remove(): Promise<void> {
    await this.#nft.apply(renderAdminGuardRemoval(this.#table), `cannot remove firewall table ${this.#table}`);
  }
}
