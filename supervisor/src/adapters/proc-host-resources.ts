import { readFile, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TabulaError } from '../domain/errors.js';
import type { HostResources } from '../ports/host-resources.js';

/** /proc/meminfo and statfs(2). */
export class ProcHostResources implements HostResources {
  async availableMemoryMiB(): Promise<number> {
    const text = await readFile('/proc/meminfo', 'utf8').catch((e: Error) => {
      throw new TabulaError('internal', `cannot read /proc/meminfo: ${e.message}`, { cause: e });
    });
    const kib = /^MemAvailable:\s+(\d+) kB/m.exec(text)?.[1];
    if (kib === undefined) throw new TabulaError('internal', '/proc/meminfo has no MemAvailable line');
    return Math.floor(Number(kib) / 1024);
  }

  async freeDiskMiB(dir: string): Promise<number> {
    // A storage directory not made yet lives on its nearest existing parent's filesystem.
    for (let d = dir; ; d = dirname(d)) {
      try {
        const s = await statfs(d);
        return Math.floor((s.bavail * s.bsize) / 2 ** 20);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || d === '/') throw new TabulaError('disk-failed', `cannot statfs ${d}: ${(e as Error).message}`, { cause: e });
      }
    }
  }
}
