import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StationError } from '../domain/errors.js';
import type { StationPaths, StationSourcesRead } from '../domain/station-sources.js';
import type { Logger } from '../ports/logger.js';
import type { SettingsSource } from '../ports/settings-source.js';

const FETCH_TIMEOUT_MS = 3_000;

/** The station's own sources as they are now: the image's file (required), the card's and networkd's leases (either may be absent). */
export async function readStationSources(paths: StationPaths): Promise<StationSourcesRead> {
  const [leases, card, config] = await Promise.all([readLeases(paths.leaseDir), readOptional(paths.card), readOptional(paths.config)]);
  if (config === undefined) throw new StationError('config-unreadable', `${paths.config}: ENOENT`);
  return { paths, leases, card, config };
}

/** The server's client.conf over HTTP, or why it could not be had. */
export async function fetchServerConf(url: string): Promise<{ text: string } | { error: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!res.ok) return { error: `HTTP ${res.status}` };
    return { text: await res.text() };
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${(e.cause as NodeJS.ErrnoException).code ?? e.cause.message}` : '';
    return { error: `${e instanceof Error ? e.message : String(e)}${cause}` };
  }
}

/** The station's files and leases, and the server's `/client.conf` over HTTP. */
export class FileSettingsSource implements SettingsSource {
  constructor(
    private readonly paths: StationPaths,
    private readonly logger: Logger,
  ) {}

  local(): Promise<StationSourcesRead> {
    return readStationSources(this.paths);
  }

  async server(url: string): Promise<string | undefined> {
    const got = await fetchServerConf(url);
    if ('text' in got) return got.text;
    this.logger.debug('server-config-unavailable', { url, error: got.error });
    return undefined;
  }

  hostname(): string {
    return hostname();
  }
}

/** Every lease networkd holds, by interface index; none when the directory does not exist (before networkd ran). */
async function readLeases(dir: string): Promise<{ origin: string; text: string }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (isAbsent(e)) return [];
    throw unreadable(dir, e);
  }
  // networkd names a lease by its interface index and writes it to a `.#…` temporary file
  // renamed over it: only the numbered files are leases.
  const indexes = names.filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
  const leases: { origin: string; text: string }[] = [];
  for (const name of indexes) {
    const origin = join(dir, name);
    // Gone between the listing and the read: the link lost its lease meanwhile.
    const text = await readOptional(origin);
    if (text !== undefined) leases.push({ origin, text });
  }
  return leases;
}

/** A file's text, or undefined when there is no such file. */
async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (isAbsent(e)) return undefined;
    throw unreadable(path, e);
  }
}

function isAbsent(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function unreadable(path: string, e: unknown): StationError {
  return new StationError('config-unreadable', `${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
}
