import type { PoolOverrides } from '../domain/pool-overrides.js';

/** Where staff's pool changes (sizes, drained) live: they outlive restarts and config reloads. */
export interface PoolStateStore {
  /** The stored overrides, or undefined when staff never changed a pool. */
  load(): Promise<PoolOverrides | undefined>;
  /** Replaces them atomically. */
  save(overrides: PoolOverrides): Promise<void>;
}
