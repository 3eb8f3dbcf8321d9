import { readFile } from 'node:fs/promises';
import type { JournalLogger } from '../adapters/journal-logger.js';
import type { PoolAdmin } from '../app/pool-admin.js';
import { parseConfig, type Config } from '../config/config.js';
import { asTabulaError, TabulaError } from '../domain/errors.js';
import type { StationLanServices } from './station-lan.js';

// The admin API's part of the composition root: the config file and its reload.

export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new TabulaError('config-unreadable', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseConfig(text, path);
}

/**
 * Re-reads the config file and applies it (pools through PoolAdmin, so
 * staff's changes stay; then the station LAN's daemons). SIGHUP and D-Bus
 * ReloadConfig both come here. A refused file leaves the running config as it
 * was and is thrown to the caller, naming the file, the line and the key.
 */
export function configReloader(path: string, pools: PoolAdmin, lan: StationLanServices, logger: JournalLogger): () => Promise<void> {
  return async () => {
    try {
      const next = await pools.reload(await loadConfig(path));
      await lan.apply(next);
      logger.notice('config-reloaded', { config: path, pools: next.pools.map((p) => `${p.name}:${p.size}`).join(',') });
    } catch (e) {
      const err = asTabulaError(e, 'config-invalid');
      logger.err('config-reload-refused', { code: err.code, error: err.message });
      throw err;
    }
  };
}
