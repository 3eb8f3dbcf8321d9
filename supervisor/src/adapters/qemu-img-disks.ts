import { execFile } from 'node:child_process';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TabulaError } from '../domain/errors.js';
import type { Disks, ImageCheck, ImageInfo } from '../ports/disks.js';

const run = promisify(execFile);
const QEMU_IMG_TIMEOUT_MS = 60_000;

/** Disk images through qemu-img; storage directories through the file system. */
export class QemuImgDisks implements Disks {
  async inspect(path: string): Promise<ImageInfo> {
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new TabulaError('golden-image-invalid', `golden image ${path} is not a regular file`);
    } catch (e) {
      if (e instanceof TabulaError) throw e;
      throw new TabulaError('golden-image-missing', `golden image ${path} does not exist`, { cause: e });
    }
    let out: string;
    try {
      // -U: read the header even while running VMs hold the image open.
      ({ stdout: out } = await run('qemu-img', ['info', '-U', '--output=json', path], { timeout: QEMU_IMG_TIMEOUT_MS }));
    } catch (e) {
      throw new TabulaError('golden-image-invalid', `golden image ${path} cannot be read: ${firstLine(e)}`, { cause: e });
    }
    const info = JSON.parse(out) as { format: string; 'virtual-size': number; 'actual-size': number; 'backing-filename'?: string };
    return {
      format: info.format,
      virtualSize: info['virtual-size'],
      actualSize: info['actual-size'],
      ...(info['backing-filename'] === undefined ? {} : { backingFile: info['backing-filename'] }),
    };
  }

  async check(path: string, format: string): Promise<ImageCheck> {
    // qemu-img check exits 2 on corruptions and 3 on leaks, still reporting them; only qcow2 has metadata to check.
    if (format !== 'qcow2') return { corruptions: 0, leaks: 0 };
    let out: string;
    try {
      ({ stdout: out } = await run('qemu-img', ['check', '--output=json', '-f', format, path], { timeout: QEMU_IMG_TIMEOUT_MS }));
    } catch (e) {
      const err = e as { code?: unknown; stdout?: string };
      if ((err.code !== 2 && err.code !== 3) || !err.stdout) return { corruptions: 0, leaks: 0, error: firstLine(e) };
      out = err.stdout;
    }
    const r = JSON.parse(out) as { corruptions?: number; leaks?: number; 'check-errors'?: number };
    const errors = r['check-errors'] ?? 0;
    return { corruptions: r.corruptions ?? 0, leaks: r.leaks ?? 0, ...(errors > 0 ? { error: `${errors} error(s) while checking` } : {}) };
  }

  async createOverlay(golden: { path: string; format: string }, path: string): Promise<void> {
    const temp = `${path}.tmp`;
    try {
      await rm(temp, { force: true });
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', golden.format, '-b', golden.path, temp], { timeout: QEMU_IMG_TIMEOUT_MS });
      // The overlay appears complete or not at all: a crash leaves only a .tmp.
      await rename(temp, path);
    } catch (e) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw new TabulaError('disk-failed', `cannot create overlay ${path} on ${golden.path}: ${firstLine(e)}`, { cause: e });
    }
  }

  async list(dir: string): Promise<string[]> {
    try {
      return (await readdir(dir)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new TabulaError('disk-failed', `cannot list ${dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  async remove(path: string): Promise<void> {
    try {
      await rm(path, { force: true });
    } catch (e) {
      throw new TabulaError('disk-failed', `cannot delete ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  async ensureDir(dir: string): Promise<void> {
    // 0711: QEMU (another user) must reach its own disk by name, but nobody may list visitors' disks.
    await mkdir(dir, { recursive: true, mode: 0o711 });
  }
}

function firstLine(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  return (err.stderr?.trim() || err.message || String(e)).split('\n')[0] ?? '';
}
