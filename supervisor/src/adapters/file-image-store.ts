import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { importTemp } from '../domain/golden-store.js';
import { TabulaError } from '../domain/errors.js';
import type { ImageStore, IncomingFile } from '../ports/image-store.js';

/** The image store as a directory: streamed copies under hidden names, renamed into place. */
export class FileImageStore implements ImageStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async list(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new TabulaError('disk-failed', `cannot list ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  async sizeOf(path: string): Promise<number> {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      throw new TabulaError('not-found', `${path} does not exist (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`, { cause: e });
    }
    if (!st.isFile()) throw new TabulaError('invalid-argument', `${path} is not a regular file`);
    return st.size;
  }

  async freeBytes(): Promise<number> {
    await this.#ensureDir();
    const fs = await statfs(this.dir);
    return fs.bavail * fs.bsize;
  }

  async copyIn(files: readonly IncomingFile[], progress: (bytes: number) => void, signal: AbortSignal): Promise<Array<{ temp: string; sha256: string }>> {
    await this.#ensureDir();
    const done: Array<{ temp: string; sha256: string }> = [];
    try {
      for (const f of files) {
        const temp = `${this.dir}/${importTemp(f.name)}`;
        const hash = createHash('sha256');
        const tap = new Transform({
          transform(chunk: Buffer, _enc, next) {
            hash.update(chunk);
            progress(chunk.length);
            next(null, chunk);
          },
        });
        done.push({ temp, sha256: '' });
        // 0644: QEMU (another user) reads the image; it is never written.
        await pipeline(createReadStream(f.source), tap, createWriteStream(temp, { flags: 'w', mode: 0o644 }), { signal });
        // On disk before the rename makes it an image: a power cut leaves the whole image or none.
        const fh = await open(temp, 'r');
        await fh.sync().finally(() => fh.close());
        done[done.length - 1] = { temp, sha256: hash.digest('hex') };
      }
      return done;
    } catch (e) {
      await Promise.all(done.map((d) => rm(d.temp, { force: true }).catch(() => undefined)));
      if (signal.aborted) throw new TabulaError('disk-failed', 'the import was stopped (the supervisor is shutting down)', { cause: e });
      throw new TabulaError('disk-failed', `cannot copy into ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  async commit(files: ReadonlyArray<{ temp: string; name: string }>): Promise<void> {
    try {
      for (const f of files) await rename(f.temp, `${this.dir}/${f.name}`);
    } catch (e) {
      throw new TabulaError('disk-failed', `cannot move the import into ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  async remove(name: string): Promise<void> {
    try {
      await rm(`${this.dir}/${name}`, { force: true });
    } catch (e) {
      throw new TabulaError('disk-failed', `cannot delete ${this.dir}/${name}: ${(e as Error).message}`, { cause: e });
    }
  }

  async #ensureDir(): Promise<void> {
    // 0755: QEMU reaches the images by name (libvirt relabels each for the VM using it).
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
  }
}
