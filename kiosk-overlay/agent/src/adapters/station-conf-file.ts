import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { StationError } from '../domain/errors.js';
import type { Logger } from '../ports/logger.js';
import type { SettingsSource } from '../ports/settings-source.js';

const FETCH_TIMEOUT_MS = 3_000;

/** The station's settings file, read whole. */
export async function readStationConf(path: string): Promise<{ origin: string; text: string }> {
  try {
    return { origin: path, text: await readFile(path, 'utf8') };
  } catch (e) {
    throw new StationError('config-unreadable', `${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
}

/** `/etc/tabula/station.conf` and the server's `/client.conf` over HTTP. */
export class FileSettingsSource implements SettingsSource {
  constructor(
    private readonly path: string,
    private readonly logger: Logger,
  ) {}

  local(): Promise<{ origin: string; text: string }> {
    return readStationConf(this.path);
  }

  async server(url: string): Promise<string | undefined> {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return await res.text();
    } catch (e) {
      this.logger.debug('server-config-unavailable', { url, error: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  }

  hostname(): string {
    return hostname();
  }
}
