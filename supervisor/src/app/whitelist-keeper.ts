import type { VmNetworkConfig } from '../config/config.js';
import { asTabulaError, TabulaError } from '../domain/errors.js';
import type { VmNetworkSpec } from '../domain/vm-network.js';
import { diffWhitelist, formatWhitelistEntry, normalizeWhitelist, parseWhitelist, whitelistCidrs, type WhitelistEntry } from '../domain/whitelist.js';
import type { Logger } from '../ports/logger.js';
import type { VmNetwork } from '../ports/vm-network.js';
import type { VmResolver, WhitelistStore } from '../ports/whitelist.js';

export interface WhitelistKeeperDeps {
  readonly network: VmNetwork;
  readonly resolver: VmResolver;
  readonly store: WhitelistStore;
  readonly logger: Logger;
}

/**
 * The VMs' whitelist: what the config says until staff change it, then what
 * they stored. A change is checked whole before anything moves, applied live
 * (the VM table's ranges in one transaction, the resolver's names by SIGHUP),
 * and undone if any part fails: never half-applied, and sessions go on.
 */
export class WhitelistKeeper {
  readonly #config: VmNetworkConfig;
  readonly #deps: WhitelistKeeperDeps;
  #entries: WhitelistEntry[];
  #lane: Promise<unknown> = Promise.resolve();

  constructor(config: VmNetworkConfig, deps: WhitelistKeeperDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#entries = normalizeWhitelist(config.whitelist);
  }

  /** Takes up staff's stored list if there is one (a bad one is reported and the config's kept). */
  async load(): Promise<WhitelistEntry[]> {
    try {
      const stored = await this.#deps.store.load();
      if (stored !== undefined) this.#entries = normalizeWhitelist(this.#parse(stored));
    } catch (e) {
      const err = asTabulaError(e);
      this.#deps.logger.err('whitelist-stored-unusable', { code: err.code, error: err.message, using: 'the config\'s whitelist' });
    }
    return this.#entries;
  }

  entries(): readonly WhitelistEntry[] {
    return this.#entries;
  }

  list(): string[] {
    return this.#entries.map(formatWhitelistEntry);
  }

  /** The VM table's spec for a whitelist. */
  spec(entries: readonly WhitelistEntry[] = this.#entries): VmNetworkSpec {
    const c = this.#config;
    return {
      table: c.table,
      bridge: c.bridge,
      subnet: c.subnet,
      serverAddress: c.serverAddress,
      allow: whitelistCidrs(entries),
      forbidden: c.forbidden,
      resolvedTimeout: c.resolvedTimeout,
      masquerade: c.masquerade,
    };
  }

  set(texts: readonly string[]): Promise<string[]> {
    return this.#serially(() => this.#set(normalizeWhitelist(this.#parse(texts))));
  }

  add(text: string): Promise<string[]> {
    return this.#serially(() => this.#set(normalizeWhitelist([...this.#entries, ...this.#parse([text])])));
  }

  remove(text: string): Promise<string[]> {
    return this.#serially(async () => {
      const [gone] = this.#parse([text]);
      const key = gone === undefined ? '' : formatWhitelistEntry(gone);
      const next = this.#entries.filter((e) => formatWhitelistEntry(e) !== key);
      if (next.length === this.#entries.length) throw new TabulaError('not-found', `${JSON.stringify(text)} is not on the whitelist`);
      return this.#set(next);
    });
  }

  #parse(texts: readonly string[]): WhitelistEntry[] {
    const entries = parseWhitelist(texts, [this.#config.subnet, ...this.#config.forbidden]);
    if (entries.some((e) => e.kind === 'name') && this.#config.upstreams.length === 0) {
      throw new TabulaError('invalid-argument', 'names need a DNS server to resolve them: set vm_network.upstream_dns first');
    }
    return entries;
  }

  async #set(next: WhitelistEntry[]): Promise<string[]> {
    const { network, resolver, store, logger } = this.#deps;
    const before = this.#entries;
    const diff = diffWhitelist(before, next);
    const upstreams = this.#config.upstreams;
    // The table first: one transaction, so a refusal leaves everything as it was.
    await network.setWhitelist(this.spec(next), { forgetResolved: diff.namesRemoved });
    try {
      await resolver.setWhitelist(upstreams, next);
      await store.save(next.map(formatWhitelistEntry));
    } catch (e) {
      // Put the old list back everywhere; what failed is what the caller hears.
      await network.setWhitelist(this.spec(before)).catch(() => undefined);
      await resolver.setWhitelist(upstreams, before).catch(() => undefined);
      throw e;
    }
    this.#entries = next;
    logger.notice('whitelist-changed', { added: diff.added.map(formatWhitelistEntry).join(',') || 'none', removed: diff.removed.map(formatWhitelistEntry).join(',') || 'none' });
    return this.list();
  }

  #serially<T>(job: () => Promise<T>): Promise<T> {
    const next = this.#lane.then(job, job);
    this.#lane = next.catch(() => undefined);
    return next;
  }
}
