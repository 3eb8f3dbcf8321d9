import type { Config } from '../config/config.js';
import { asTabulaError } from '../domain/errors.js';
import { goldenProblem } from '../domain/golden.js';
import type { Disks } from '../ports/disks.js';

/** A pool's golden image as staff see it (read-only: importing and switching images is another piece of work). */
export interface GoldenImageView {
  readonly pool: string;
  readonly path: string;
  readonly format?: string;
  /** Bytes the guest sees. */
  readonly virtualSize?: number;
  /** Bytes on the host's disk. */
  readonly actualSize?: number;
  /** Why the pool cannot clone from it; absent when it can. */
  readonly problem?: string;
}

/** Each configured pool's golden image, looked at now (qemu-img), one pool's trouble never hiding another's image. */
export async function goldenImages(config: Config, disks: Disks): Promise<GoldenImageView[]> {
  return Promise.all(
    config.pools.map(async (p): Promise<GoldenImageView> => {
      try {
        const info = await disks.inspect(p.goldenImage);
        const problem = goldenProblem(p.goldenImage, info);
        return { pool: p.name, path: p.goldenImage, format: info.format, virtualSize: info.virtualSize, actualSize: info.actualSize, ...(problem ? { problem } : {}) };
      } catch (e) {
        return { pool: p.name, path: p.goldenImage, problem: asTabulaError(e).message };
      }
    }),
  );
}
