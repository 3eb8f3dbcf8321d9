import type { WhitelistEntry } from '../domain/whitelist.js';

/** Where staff's whitelist lives once they changed it: it outlives restarts and config reloads. */
export interface WhitelistStore {
  /** The stored list, or undefined when staff never changed it (the config's list applies). */
  load(): Promise<string[] | undefined>;
  /** Replaces the stored list atomically. */
  save(entries: readonly string[]): Promise<void>;
}

/** The VMs' resolver: it answers only the whitelisted names. */
export interface VmResolver {
  setWhitelist(upstreams: readonly string[], whitelist: readonly WhitelistEntry[]): Promise<void>;
}
