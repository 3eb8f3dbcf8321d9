import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TabulaError } from '../../domain/errors.js';
import type { CredentialStore } from '../../ports/admin-credentials.js';

/** The admin page's directory (STATE_DIR/admin): root's only, whatever umask the service runs with. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    // The state directory above it is made passable, not private: QEMU reaches the pools' disks and the images through it
    // (on a first start without a golden image, this is the first directory made there).
    await mkdir(dirname(dir), { recursive: true, mode: 0o711 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  } catch (e) {
    throw new TabulaError('disk-failed', `cannot make ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

/** A file's text, or undefined when there is no such file. */
export async function readPrivate(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TabulaError('disk-failed', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Writes beside the file (mode 0600 from the start), then renames: a crash leaves the old file or the new one. */
export async function writePrivate(path: string, text: string): Promise<void> {
  try {
    await writeFile(`${path}.new`, text, { mode: 0o600 });
    await rename(`${path}.new`, path);
  } catch (e) {
    throw new TabulaError('disk-failed', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** The admin password's record in DIR/password. */
export class FileCredentialStore implements CredentialStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async load(): Promise<string | undefined> {
    const text = await readPrivate(join(this.#dir, 'password'));
    return text === undefined || text.trim() === '' ? undefined : text.trim();
  }

  async save(record: string): Promise<void> {
    await ensurePrivateDir(this.#dir);
    await writePrivate(join(this.#dir, 'password'), record + '\n');
  }
}
