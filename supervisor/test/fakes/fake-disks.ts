import { TabulaError } from '../../src/domain/errors.js';
import type { Disks, ImageCheck, ImageInfo } from '../../src/ports/disks.js';

type DisksMethod = keyof Disks;

export const GOLDEN_QCOW2: ImageInfo = { format: 'qcow2', virtualSize: 10 * 2 ** 30, actualSize: 3 * 2 ** 30 };

interface FakeFile {
  readonly info?: ImageInfo;
  /** What qemu-img check says of it (clean when absent). */
  readonly check?: ImageCheck;
  readonly backing?: { readonly path: string; readonly format: string };
}

/** A file system of disk images, with the error codes of the real adapter. */
export class FakeDisks implements Disks {
  readonly #files = new Map<string, FakeFile>();
  readonly #dirs = new Set<string>();
  readonly #failures = new Map<DisksMethod, Error[]>();

  async inspect(path: string): Promise<ImageInfo> {
    this.#enter('inspect');
    const f = this.#files.get(path);
    if (f === undefined) throw new TabulaError('golden-image-missing', `golden image ${path} does not exist`);
    if (f.info !== undefined) return f.info;
    if (f.backing !== undefined) return { format: 'qcow2', virtualSize: 0, actualSize: 0, backingFile: f.backing.path };
    throw new TabulaError('golden-image-invalid', `golden image ${path} cannot be read: not a disk image`);
  }

  async check(path: string, _format: string): Promise<ImageCheck> {
    this.#enter('check');
    return this.#files.get(path)?.check ?? { corruptions: 0, leaks: 0 };
  }

  async createOverlay(golden: { path: string; format: string }, path: string): Promise<void> {
    this.#enter('createOverlay');
    // qemu-img opens the backing file to size the overlay.
    if (!this.#files.has(golden.path)) throw new TabulaError('disk-failed', `cannot create overlay ${path} on ${golden.path}: No such file or directory`);
    if (!this.#dirs.has(dirname(path))) throw new TabulaError('disk-failed', `cannot create overlay ${path}: No such file or directory`);
    this.#files.set(path, { backing: { path: golden.path, format: golden.format } });
  }

  async list(dir: string): Promise<string[]> {
    this.#enter('list');
    return [...this.#files.keys()]
      .filter((p) => dirname(p) === dir)
      .map((p) => p.slice(dir.length + 1))
      .sort();
  }

  async remove(path: string): Promise<void> {
    this.#enter('remove');
    this.#files.delete(path);
  }

  async ensureDir(dir: string): Promise<void> {
    this.#enter('ensureDir');
    this.#dirs.add(dir);
  }

  // ---- test controls ----

  /** An image `inspect` reports as `info` (a golden image, typically). */
  putImage(path: string, info: ImageInfo = GOLDEN_QCOW2, check?: ImageCheck): void {
    this.#dirs.add(dirname(path));
    this.#files.set(path, { info, ...(check === undefined ? {} : { check }) });
  }

  /** Any other file, e.g. a leftover from before a crash or something a person put there. */
  putFile(path: string): void {
    this.#dirs.add(dirname(path));
    this.#files.set(path, {});
  }

  /** Copies a file to another path, as a file system would (what FakeImageStore does with the files it brings in). */
  copy(from: string, to: string): void {
    const f = this.#files.get(from);
    if (f === undefined) throw new TabulaError('not-found', `${from} does not exist`);
    this.#dirs.add(dirname(to));
    this.#files.set(to, f);
  }

  deleteFile(path: string): void {
    this.#files.delete(path);
  }

  has(path: string): boolean {
    return this.#files.has(path);
  }

  backingOf(path: string): { path: string; format: string } | undefined {
    return this.#files.get(path)?.backing;
  }

  paths(): string[] {
    return [...this.#files.keys()].sort();
  }

  failNext(method: DisksMethod, error: Error = new TabulaError('disk-failed', `injected ${method} failure`)): void {
    const queue = this.#failures.get(method) ?? [];
    queue.push(error);
    this.#failures.set(method, queue);
  }

  #enter(method: DisksMethod): void {
    const injected = this.#failures.get(method)?.shift();
    if (injected) throw injected;
  }
}

function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
