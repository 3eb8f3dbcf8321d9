import { createHash } from 'node:crypto';
import { TabulaError } from '../../src/domain/errors.js';
import { importTemp } from '../../src/domain/golden-store.js';
import type { ImageStore, IncomingFile } from '../../src/ports/image-store.js';
import type { FakeDisks } from './fake-disks.js';

/**
 * The image store over FakeDisks' files, so what it brings in is an image
 * the reconciler can clone from. Source files have the sizes tests give them.
 */
export class FakeImageStore implements ImageStore {
  readonly dir: string;
  /** Free bytes on its file system. */
  free = 100 * 2 ** 30;
  readonly #disks: FakeDisks;
  readonly #sizes = new Map<string, number>();
  /** What small files hold (NAME.sha256), by path; they follow their file on commit. */
  readonly #texts = new Map<string, string>();
  /** The next copyIn fails once its first file is copied (a full disk, an I/O error). */
  failCopy = false;

  constructor(dir: string, disks: FakeDisks) {
    this.dir = dir;
    this.#disks = disks;
  }

  /** A file outside the store of `bytes` bytes (an image if FakeDisks knows it as one). */
  setSize(path: string, bytes: number): void {
    this.#sizes.set(path, bytes);
  }

  async list(): Promise<string[]> {
    return this.#disks.list(this.dir);
  }

  async sizeOf(path: string): Promise<number> {
    if (!this.#disks.has(path)) throw new TabulaError('not-found', `${path} does not exist (ENOENT)`);
    return this.#sizes.get(path) ?? 4096;
  }

  async freeBytes(): Promise<number> {
    return this.free;
  }

  async copyIn(files: readonly IncomingFile[], progress: (bytes: number) => void, _signal: AbortSignal): Promise<Array<{ temp: string; sha256: string }>> {
    const out: Array<{ temp: string; sha256: string }> = [];
    for (const f of files) {
      const temp = `${this.dir}/${importTemp(f.name)}`;
      this.#disks.copy(f.source, temp);
      out.push({ temp, sha256: fakeSha256(f.source) });
      if (this.failCopy) {
        // Half-way: what was copied goes again, as the real store does.
        this.failCopy = false;
        for (const o of out) this.#disks.deleteFile(o.temp);
        throw new TabulaError('disk-failed', `cannot copy into ${this.dir}: No space left on device`);
      }
      progress(await this.sizeOf(f.source));
    }
    return out;
  }

  async stageText(name: string, text: string): Promise<string> {
    const temp = `${this.dir}/${importTemp(name)}`;
    this.#disks.putFile(temp);
    this.#texts.set(temp, text);
    return temp;
  }

  async readText(name: string): Promise<string | undefined> {
    return this.#texts.get(`${this.dir}/${name}`);
  }

  async commit(files: ReadonlyArray<{ temp: string; name: string }>): Promise<void> {
    for (const f of files) {
      const to = `${this.dir}/${f.name}`;
      this.#disks.copy(f.temp, to);
      this.#disks.deleteFile(f.temp);
      const text = this.#texts.get(f.temp);
      this.#texts.delete(f.temp);
      if (text !== undefined) this.#texts.set(to, text);
    }
  }

  async remove(name: string): Promise<void> {
    this.#disks.deleteFile(`${this.dir}/${name}`);
    this.#texts.delete(`${this.dir}/${name}`);
  }
}

/** A digest that stands for a file's bytes: the sha256 of its path (of `what`). */
export function fakeSha256(what: string): string {
  return createHash('sha256').update(what).digest('hex');
}
