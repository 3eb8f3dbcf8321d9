import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../ports/logger.js';
import type { Pictures } from '../ports/pictures.js';

const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(png|jpe?g|gif|webp|svg)$/i;
const FETCH_TIMEOUT_MS = 5_000;
const MAX_PICTURES = 200;

async function imagesIn(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => IMAGE.test(n)).sort().map((n) => join(dir, n));
}

export interface FolderPicturesOptions {
  readonly slideshowFolder: () => string;
  readonly animationFolder: () => string;
  /** The server's JSON list of pictures ('' for none). */
  readonly slideshowUrl: () => string;
  /** Where the server's pictures are kept (readable by the kiosk account, outside its home). */
  readonly cacheDir: string;
  readonly logger: Logger;
}

/**
 * Local folders (on the read-only card) plus the server's slideshow, fetched
 * into a cache so the screen only ever reads local files. The server's list
 * wins when it has pictures: staff change it without touching any card.
 */
export class FolderPictures implements Pictures {
  constructor(private readonly o: FolderPicturesOptions) {}

  async slideshow(): Promise<string[]> {
    const remote = await this.#fetchRemote().catch((e: unknown) => {
      this.o.logger.warning('slideshow-fetch-failed', { url: this.o.slideshowUrl(), error: e instanceof Error ? e.message : String(e) });
      return imagesIn(this.o.cacheDir);
    });
    return remote.length > 0 ? remote : imagesIn(this.o.slideshowFolder());
  }

  animation(): Promise<string[]> {
    return imagesIn(this.o.animationFolder());
  }

  async #fetchRemote(): Promise<string[]> {
    const url = this.o.slideshowUrl();
    if (url === '') return [];
    const list = (await (await get(url)).json()) as unknown;
    if (!Array.isArray(list)) throw new Error(`${url}: not a JSON list`);
    const wanted = new Map<string, { size: number; mtime: number }>();
    for (const item of list.slice(0, MAX_PICTURES)) {
      const { name, size, mtime } = (item ?? {}) as { name?: unknown; size?: unknown; mtime?: unknown };
      if (typeof name === 'string' && IMAGE.test(name) && typeof size === 'number') wanted.set(name, { size, mtime: Number(mtime) || 0 });
    }
    await mkdir(this.o.cacheDir, { recursive: true, mode: 0o755 });
    for (const name of await readdir(this.o.cacheDir)) if (!wanted.has(name)) await rm(join(this.o.cacheDir, name), { force: true });
    for (const [name, want] of wanted) {
      const file = join(this.o.cacheDir, name);
      const have = await stat(file).catch(() => undefined);
      if (have && have.size === want.size && Math.round(have.mtimeMs) >= want.mtime) continue;
      const body = Buffer.from(await (await get(new URL(encodeURIComponent(name), url).href)).arrayBuffer());
      // Whole files only: the screen may be reading the cache right now.
      await writeFile(`${file}.part`, body, { mode: 0o644 });
      await rename(`${file}.part`, file);
    }
    return imagesIn(this.o.cacheDir);
  }
}

async function get(url: string): Promise<Response> {
  const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res;
}
