import type { IncomingMessage, ServerResponse } from 'node:http';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Disposable } from '../ports/disposable.js';
import { slideshowType } from '../render/station-config.js';
import { listenHttp, readOnlyMethod, send, TEXT_TYPE } from './http/listen.js';

export interface StationEndpoint {
  /** The text of GET /client.conf, rendered on each request (the config may be reloaded). */
  readonly clientConf: () => string;
  /** Staff put the slideshow's pictures here; stations fetch them, so no card needs changing. */
  readonly slideshowDir: () => string;
}

/** Large enough for a full-HD photo; a station never needs more, and nothing bigger is read into memory. */
const MAX_IMAGE_BYTES = 32 * 2 ** 20;

/**
 * The stations' HTTP endpoint on the station LAN: GET /client.conf,
 * GET /slideshow/ (a JSON list of the pictures) and GET /slideshow/NAME.
 * Read-only, no directory listing beyond the pictures, no path outside the folder.
 */
export class StationHttpServer {
  listen(host: string, port: number, endpoint: StationEndpoint): Promise<{ port: number } & Disposable> {
    return listenHttp(host, port, 'the station endpoint', (req, res) => {
      respond(req, res, endpoint).catch(() => send(req, res, 500, TEXT_TYPE, 'internal error\n'));
    });
  }
}

async function respond(req: IncomingMessage, res: ServerResponse, endpoint: StationEndpoint): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (!readOnlyMethod(req, res)) return;
  if (path === '/client.conf') return send(req, res, 200, TEXT_TYPE, endpoint.clientConf());
  if (path === '/slideshow/' || path === '/slideshow') return send(req, res, 200, 'application/json', JSON.stringify(await pictures(endpoint.slideshowDir())) + '\n');
  const name = path.startsWith('/slideshow/') ? decoded(path.slice('/slideshow/'.length)) : undefined;
  const type = name === undefined ? undefined : slideshowType(name);
  if (name === undefined || type === undefined) return send(req, res, 404, TEXT_TYPE, 'not found\n');
  const file = await inside(endpoint.slideshowDir(), name);
  if (file === undefined) return send(req, res, 404, TEXT_TYPE, 'not found\n');
  send(req, res, 200, type, await readFile(file));
}

/** The pictures in the folder, by name, with size and time so a station can tell what changed. */
async function pictures(dir: string): Promise<Array<{ name: string; size: number; mtime: number }>> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: Array<{ name: string; size: number; mtime: number }> = [];
  for (const name of names.sort()) {
    if (slideshowType(name) === undefined) continue;
    const file = await inside(dir, name);
    if (file === undefined) continue;
    const s = await stat(file);
    out.push({ name, size: s.size, mtime: Math.round(s.mtimeMs) });
  }
  return out;
}

/** The real path of dir/name if it is a regular file really inside dir (no link leads out) and not too big. */
async function inside(dir: string, name: string): Promise<string | undefined> {
  try {
    const [root, file] = await Promise.all([realpath(dir), realpath(join(dir, name))]);
    if (!file.startsWith(root + '/')) return undefined;
    const s = await stat(file);
    return s.isFile() && s.size <= MAX_IMAGE_BYTES ? file : undefined;
  } catch {
    return undefined;
  }
}

/** A URL path element decoded, or undefined when it is not valid percent-encoding. */
function decoded(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}
