import { asTabulaError, TabulaError } from '../domain/errors.js';
import { checkProblem, goldenProblem } from '../domain/golden.js';
import { imageNameProblem, importLeftovers, roomProblem, sidecarOf, sizeProblem, type Sidecar } from '../domain/golden-store.js';
import type { Disks, ImageInfo } from '../ports/disks.js';
import type { ImageStore, IncomingFile } from '../ports/image-store.js';
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

  async run(req: ImportRequest): Promise<ImportedImage> {
    if (this.#current !== undefined) throw new TabulaError('conflict', `an import (${this.#current.name}) is under way; one at a time`);
    const name = req.name || (req.source.split('/').pop() ?? '');
    this.#current = { name, copied: 0, total: 0 };
    try {
      return await this.#run(req, name);
    } catch (e) {
      const err = asTabulaError(e, 'disk-failed');
      this.#deps.logger.err('golden-import-refused', { name, source: req.source, code: err.code, error: err.message });
      throw err;
    } finally {
      this.#current = undefined;
    }
  }

  async #run(req: ImportRequest, name: string): Promise<ImportedImage> {
    const { store, disks, logger } = this.#deps;
    for (const [what, path] of [['source', req.source], ['kernel', req.kernel], ['initrd', req.initrd]] as const) {
      if (path !== undefined && !path.startsWith('/')) throw new TabulaError('invalid-argument', `the ${what} must be an absolute path, not ${JSON.stringify(path)}`);
    }
    if (req.initrd !== undefined && req.kernel === undefined) throw new TabulaError('invalid-argument', 'an initrd needs a kernel');
    const bad = imageNameProblem(name);
    if (bad !== undefined) throw new TabulaError('invalid-argument', bad);
    const files = new Set(await store.list());
    if ([name, sidecarOf(name, 'kernel'), sidecarOf(name, 'initrd')].some((f) => files.has(f))) {
      throw new TabulaError('conflict', `an image named "${name}" is already in the store (${store.dir}); import it under another name`);
    }

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
    try {
      // What is renamed into place is what was checked: the source may have changed meanwhile.
      const temp = copies[copies.length - 1]?.temp ?? '';
      const copied = await this.#judge(req.source, await disks.inspect(temp), temp);
      if (copied.format !== info.format || copied.virtualSize !== info.virtualSize) throw new TabulaError('golden-image-invalid', `golden image ${req.source} changed while it was copied; import it again`);
      await store.commit(copies.map((c, i) => ({ temp: c.temp, name: incoming[i]?.name ?? '' })));
    } catch (e) {
      await Promise.all(copies.map((c) => store.remove(c.temp.slice(store.dir.length + 1)).catch(() => undefined)));
      throw e;
    }
    const sha256 = copies[copies.length - 1]?.sha256 ?? '';
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
  async #judge(source: string, info: ImageInfo, path = source): Promise<ImageInfo> {
    const problem = goldenProblem(source, info) ?? sizeProblem(source, info.virtualSize);
    if (problem !== undefined) throw new TabulaError('golden-image-invalid', problem);
    const check = await this.#deps.disks.check(path, info.format);
    const corrupt = checkProblem(source, check);
    if (corrupt !== undefined) throw new TabulaError('golden-image-invalid', corrupt);
    if (check.leaks > 0 && path === source) this.#deps.logger.warning('golden-import-leaks', { source, leaks: check.leaks });
    return info;
  }
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
