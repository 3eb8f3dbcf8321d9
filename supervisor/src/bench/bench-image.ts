import { chmod, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SUPERVISOR = join(REPO, 'supervisor/dist/main.js');
const GOLDEN = join(process.env['TABULA_BUILD'] ?? join(REPO, 'build'), 'test-golden');

export interface BenchImage {
  readonly dir: string;
  /** A `[[pool]]` section of `size` VMs of the test image (none when size is 0). */
  pool(size: number, extra?: readonly string[]): string[];
  remove(): Promise<void>;
}

/**
 * A private copy of the test golden image in a directory QEMU (another user)
 * may enter, so a benchmark never touches the build.
 */
export async function benchImage(): Promise<BenchImage> {
  const dir = await mkdtemp(join(tmpdir(), 'tabula-bench-'));
  await chmod(dir, 0o711);
  for (const f of ['golden.qcow2', 'vmlinuz', 'initrd.img']) await copyFile(join(GOLDEN, f), join(dir, f));
  const cmdline = (await readFile(join(GOLDEN, 'cmdline'), 'utf8')).trim();
  return {
    dir,
    pool: (size, extra = []) =>
      size === 0
        ? []
        : ['[[pool]]', 'name = "bench"', `golden_image = "${dir}/golden.qcow2"`, `size = ${size}`, 'vcpus = 1', 'memory = 192', 'video = "vga"',
           'spice_port_base = 5990', `kernel = "${dir}/vmlinuz"`, `initrd = "${dir}/initrd.img"`, `cmdline = "${cmdline}"`, ...extra],
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
