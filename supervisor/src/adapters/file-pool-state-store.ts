import { isPoolOverrides, type PoolOverrides } from '../domain/pool-overrides.js';
import type { PoolStateStore } from '../ports/pool-state.js';
import { JsonFileStore } from './json-file-store.js';

/** Staff's pool changes as a JSON object in the state directory (`pools.json`), replaced atomically. */
export class FilePoolStateStore extends JsonFileStore<PoolOverrides> implements PoolStateStore {
  constructor(file: string) {
    super(file, isPoolOverrides, 'a JSON object of pool overrides ({"POOL": {"size": N, "configSize": N, "drained": true}})');
  }
}
