import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { importTemp } from '../domain/golden-store.js';
import { TabulaError } from '../domain/errors.js';
import type { ImageStore, IncomingFile } from '../ports/image-store.js';
import { writeHashed } from './hashed-write.js';

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
        done.push({ temp, sha256: '' });
        // A leftover of an earlier try under the same name would make the write refuse.
        await rm(temp, { force: true });
        const { sha256 } = await writeHashed(createReadStream(f.source), temp, progress, signal);
        done[done.length - 1] = { temp, sha256 };
      }
      return done;
    } catch (e) {
      await Promise.all(done.map((d) => rm(d.temp, { force: true }).catch(() => undefined)));
      if (signal.aborted) throw new TabulaError('disk-failed', 'the import was stopped (the supervisor is shutting down)', { cause: e });
      throw new TabulaError('disk-failed', `cannot copy into ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  async stageText(name: string, text: string): Promise<string> {
    const temp = `${this.dir}/${importTemp(name)}`;
    try {
      const fh = await open(temp, 'w', 0o644);
      await fh.writeFile(text).then(() => fh.sync()).finally(() => fh.close());
      return temp;
    } catch (e) {
      throw new TabulaError('disk-failed', `cannot write ${temp}: ${(e as Error).message}`, { cause: e });
    }
  }

  async readText(name: string): Promise<string | undefined> {
    try {
      return await readFile(`${this.dir}/${name}`, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TabulaError('disk-failed', `cannot read ${this.dir}/${name}: ${(e as Error).message}`, { cause: e });
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
