import { asTabulaError, TabulaError } from '../domain/errors.js';
import { checkProblem, goldenProblem } from '../domain/golden.js';
import { filesOf, imageNameProblem, importLeftovers, importTemp, roomProblem, sha256Line, sidecarOf, sizeProblem, type Sidecar } from '../domain/golden-store.js';
import type { Disks, ImageInfo } from '../ports/disks.js';
import type { ImageStore, IncomingFile, IncomingStream } from '../ports/image-store.js';
import type { Logger } from '../ports/logger.js';

export interface ImportRequest {
  /** An absolute path on the appliance: a qcow2 or raw disk image. */
  readonly source: string;
  /** Its name in the store; default: the source's file name. */
  readonly name?: string;
  /** Its own direct-boot kernel and initrd (absolute paths), copied beside it. */
  readonly kernel?: string;
  readonly initrd?: string;
}

/** An image uploaded from staff's browser: its bytes are written straight into the store, then checked there. */
export interface UploadRequest {
  readonly name: string;
  readonly upload: IncomingStream;
}

export interface ImportedImage {
  readonly name: string;
  readonly path: string;
  readonly format: string;
  readonly virtualSize: number;
  /** Bytes copied: the image and its kernel and initrd. */
  readonly bytes: number;
  readonly sha256: string;
  readonly kernel?: string;
  readonly initrd?: string;
}

/** An import under way, as the image list shows it. */
export interface ImportProgress {
  readonly name: string;
  readonly copied: number;
  readonly total: number;
}

export interface ImageImportDeps {
  readonly store: ImageStore;
  readonly disks: Pick<Disks, 'inspect' | 'check'>;
  readonly logger: Logger;
  /** [supervisor] disk_reserve, as configured now. */
  readonly diskReserveMiB: () => number;
}

/**
 * Brings golden images into the store, one at a time. Everything is checked
 * before a byte is copied (name, file, format, backing chain, qemu-img
 * check, room), the copy is checked again before it is renamed into place,
 * and a failed or stopped import leaves nothing behind. It runs beside the
 * reconcile loop, never in it.
 */
export class ImageImport {
  readonly #deps: ImageImportDeps;
  #current: { name: string; copied: number; total: number } | undefined;
  readonly #stop = new AbortController();

  constructor(deps: ImageImportDeps) {
    this.#deps = deps;
  }

  /** The import under way, if any. */
  progress(): ImportProgress | undefined {
    return this.#current && { ...this.#current };
  }

  /** Removes what an import cut short by a crash left in the store. */
  async sweep(): Promise<void> {
    const { store, logger } = this.#deps;
    for (const file of importLeftovers(await store.list())) {
      await store.remove(file);
      logger.notice('golden-import-leftover-removed', { file: `${store.dir}/${file}` });
    }
  }

  /** Stops an import under way (at shutdown): its copy is removed. */
  stop(): void {
    this.#stop.abort();
  }

  /** Copies an image from a file on the appliance into the store (D-Bus ImportImage, tabulactl image import). */
  run(req: ImportRequest): Promise<ImportedImage> {
    const name = req.name || (req.source.split('/').pop() ?? '');
    return this.#exclusive(name, req.source, () => this.#run(req, name));
  }

  /**
   * Takes an upload into the store without a copy: its bytes are written
   * under the import's temporary name in the store itself, checked there as
   * a copy would be, and renamed into place (the admin page's upload).
   */
  adopt(req: UploadRequest): Promise<ImportedImage> {
    return this.#exclusive(req.name, 'upload', () => this.#adopt(req));
  }

  /** Refuses, as adopt would before a byte arrives, an upload of `bytes` named `name`: before the browser sends it. */
  async checkUpload(name: string, bytes: number): Promise<void> {
    this.#refuseIfBusy();
    await this.#uploadRefusal(name, bytes);
  }

  #refuseIfBusy(): void {
    if (this.#current !== undefined) throw new TabulaError('conflict', `an import (${this.#current.name}) is under way; one at a time`);
  }

  async #exclusive(name: string, source: string, work: () => Promise<ImportedImage>): Promise<ImportedImage> {
    this.#refuseIfBusy();
    this.#current = { name, copied: 0, total: 0 };
    try {
      return await work();
    } catch (e) {
      const err = asTabulaError(e, 'disk-failed');
      this.#deps.logger.err('golden-import-refused', { name, source, code: err.code, error: err.message });
      throw err;
    } finally {
      this.#current = undefined;
    }
  }

  /** Refuses a name that is unsafe or taken (by an image or a file of one). */
  async #refuseName(name: string): Promise<void> {
    const { store } = this.#deps;
    const bad = imageNameProblem(name);
    if (bad !== undefined) throw new TabulaError('invalid-argument', bad);
    const files = new Set(await store.list());
    if (filesOf(name).some((f) => files.has(f))) {
      throw new TabulaError('conflict', `an image named "${name}" is already in the store (${store.dir}); import it under another name`);
    }
  }

  async #uploadRefusal(name: string, bytes: number): Promise<void> {
    await this.#refuseName(name);
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new TabulaError('invalid-argument', `the upload of ${name} is empty`);
    const room = roomProblem(this.#deps.store.dir, bytes, await this.#deps.store.freeBytes(), this.#deps.diskReserveMiB());
    if (room !== undefined) throw new TabulaError('disk-full', room);
  }

  async #adopt({ name, upload }: UploadRequest): Promise<ImportedImage> {
    const { store, disks, logger } = this.#deps;
    await this.#uploadRefusal(name, upload.bytes);
    const temp = `${store.dir}/${importTemp(name)}`;
    const sums = sidecarOf(name, 'sha256');
    logger.notice('golden-import-started', { name, source: 'upload', bytes: upload.bytes });
    if (this.#current) this.#current.total = upload.bytes;
    try {
      const got = await upload.writeTo(temp, (n) => this.#current && (this.#current.copied += n), this.#stop.signal);
      this.#stop.signal.throwIfAborted();
      if (got.bytes !== upload.bytes) throw new TabulaError('disk-failed', `the upload of ${name} was cut short: ${got.bytes} of ${upload.bytes} bytes arrived`);
      const info = await this.#judge(name, await disks.inspect(temp), temp, true);
      await store.commit([{ temp: await store.stageText(sums, sha256Line(name, got.sha256)), name: sums }, { temp, name }]);
      const result: ImportedImage = { name, path: `${store.dir}/${name}`, format: info.format, virtualSize: info.virtualSize, bytes: got.bytes, sha256: got.sha256 };
      logger.notice('golden-imported', { name, path: result.path, format: info.format, bytes: got.bytes, sha256: got.sha256, source: 'upload' });
      return result;
    } catch (e) {
      // Nothing of a refused or cut-short upload stays: the store never holds half an image.
      await Promise.all([importTemp(name), importTemp(sums)].map((f) => store.remove(f).catch(() => undefined)));
      if (this.#stop.signal.aborted) throw new TabulaError('disk-failed', 'the upload was stopped (the supervisor is shutting down)', { cause: e });
      throw e;
    }
  }

  async #run(req: ImportRequest, name: string): Promise<ImportedImage> {
    const { store, disks, logger } = this.#deps;
    for (const [what, path] of [['source', req.source], ['kernel', req.kernel], ['initrd', req.initrd]] as const) {
      if (path !== undefined && !path.startsWith('/')) throw new TabulaError('invalid-argument', `the ${what} must be an absolute path, not ${JSON.stringify(path)}`);
    }
    if (req.initrd !== undefined && req.kernel === undefined) throw new TabulaError('invalid-argument', 'an initrd needs a kernel');
    await this.#refuseName(name);

    const incoming: IncomingFile[] = [];
    const boot: Array<[Sidecar, string | undefined]> = [['kernel', req.kernel], ['initrd', req.initrd]];
    for (const [which, path] of boot) if (path !== undefined) incoming.push({ source: path, name: sidecarOf(name, which) });
    // The image last: renamed into place, it makes the import visible.
    incoming.push({ source: req.source, name });
    const sizes = await Promise.all(incoming.map((f) => store.sizeOf(f.source)));
    const info = await this.#judge(req.source, await disks.inspect(req.source));
    const room = roomProblem(store.dir, sum(sizes), await store.freeBytes(), this.#deps.diskReserveMiB());
    if (room !== undefined) throw new TabulaError('disk-full', room);

    logger.notice('golden-import-started', { name, source: req.source, bytes: sum(sizes) });
    if (this.#current) this.#current.total = sum(sizes);
    const copies = await store.copyIn(incoming, (n) => this.#current && (this.#current.copied += n), this.#stop.signal);
    const sha256 = copies[copies.length - 1]?.sha256 ?? '';
    const sums = sidecarOf(name, 'sha256');
    try {
      // What is renamed into place is what was checked: the source may have changed meanwhile.
      const temp = copies[copies.length - 1]?.temp ?? '';
      const copied = await this.#judge(req.source, await disks.inspect(temp), temp);
      if (copied.format !== info.format || copied.virtualSize !== info.virtualSize) throw new TabulaError('golden-image-invalid', `golden image ${req.source} changed while it was copied; import it again`);
      const staged = copies.map((c, i) => ({ temp: c.temp, name: incoming[i]?.name ?? '' }));
      // The image stays last: its rename makes the import visible.
      staged.splice(-1, 0, { temp: await store.stageText(sums, sha256Line(name, sha256)), name: sums });
      await store.commit(staged);
    } catch (e) {
      await Promise.all([...copies.map((c) => c.temp.slice(store.dir.length + 1)), importTemp(sums)].map((f) => store.remove(f).catch(() => undefined)));
      throw e;
    }
    const result: ImportedImage = {
      name,
      path: `${store.dir}/${name}`,
      format: info.format,
      virtualSize: info.virtualSize,
      bytes: sum(sizes),
      sha256,
      ...(req.kernel === undefined ? {} : { kernel: `${store.dir}/${sidecarOf(name, 'kernel')}` }),
      ...(req.initrd === undefined ? {} : { initrd: `${store.dir}/${sidecarOf(name, 'initrd')}` }),
    };
    logger.notice('golden-imported', { name, path: result.path, format: info.format, bytes: result.bytes, sha256, kernel: result.kernel ?? 'pool', initrd: result.initrd ?? (result.kernel ? 'none' : 'pool') });
    return result;
  }

  /** Refuses an image that cannot be cloned from, naming the source (also when judging its copy). */
  async #judge(source: string, info: ImageInfo, path = source, noteLeaks = path === source): Promise<ImageInfo> {
    const problem = goldenProblem(source, info) ?? sizeProblem(source, info.virtualSize);
    if (problem !== undefined) throw new TabulaError('golden-image-invalid', problem);
    const check = await this.#deps.disks.check(path, info.format);
    const corrupt = checkProblem(source, check);
    if (corrupt !== undefined) throw new TabulaError('golden-image-invalid', corrupt);
    if (check.leaks > 0 && noteLeaks) this.#deps.logger.warning('golden-import-leaks', { source, leaks: check.leaks });
    return info;
  }
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
