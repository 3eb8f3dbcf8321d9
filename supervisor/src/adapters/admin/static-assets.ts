import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { TabulaError } from '../../domain/errors.js';

export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/**
 * The page's files (HTML, scripts, styles), read once at start: a handful of
 * small files, served from memory, and no request ever names a path on disk.
 * Keyed by URL path: index.html is "/", the rest "/assets/NAME".
 */
export async function loadAssets(dir: string): Promise<ReadonlyMap<string, Asset>> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    throw new TabulaError('internal', `the admin page's files are missing (${dir}): ${(e as Error).message}`, { cause: e });
  }
  const assets = new Map<string, Asset>();
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    const body = await readFile(join(dir, name));
    assets.set(name === 'index.html' ? '/' : `/assets/${name}`, { type, body });
  }
  if (!assets.has('/')) throw new TabulaError('internal', `the admin page's files are incomplete: no index.html in ${dir}`);
  return assets;
}
