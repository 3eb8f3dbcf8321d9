import type { PoolOverrides } from '../../src/domain/pool-overrides.js';
import type { PoolStateStore } from '../../src/ports/pool-state.js';

/** Staff's pool changes kept in memory; `failNextSave` makes the next save throw. */
export class MemoryPoolStateStore implements PoolStateStore {
  stored: PoolOverrides | undefined;
  saves = 0;
  failNextSave = false;
  failLoad = false;

  async load(): Promise<PoolOverrides | undefined> {
    if (this.failLoad) throw new Error('unreadable');
    return this.stored;
  }

  async save(overrides: PoolOverrides): Promise<void> {
    if (this.failNextSave) {
      this.failNextSave = false;
      throw new Error('disk full');
    }
    this.saves++;
    this.stored = JSON.parse(JSON.stringify(overrides)) as PoolOverrides;
  }
}
