/**
 * The appliance's image store (STATE_DIR/images): one file per golden image,
 * named as staff chose, with the image's own kernel and initrd beside it when
 * it brings them, and its sha256 (NAME.sha256, as sha256sum writes it). An
 * import writes under a hidden temporary name and renames, so an image is
 * there whole or not at all.
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
const SIDECARS = ['kernel', 'initrd', 'sha256'] as const;
export type Sidecar = (typeof SIDECARS)[number];

/** The smallest disk an import takes: anything less holds no operating system (and is likely not a disk at all). */
export const MIN_IMAGE_BYTES = 1024 * 1024;
const MIB = 1024 * 1024;

/** Why `name` cannot name an image in the store, or undefined when it can. */
export function imageNameProblem(name: string): string | undefined {
  if (!NAME.test(name) || name.includes('..')) {
    return `"${name}" is not a safe image name: 1 to 100 letters, digits, '.', '_', '+' or '-', starting with a letter or digit`;
  }
  const sidecar = SIDECARS.find((s) => name.endsWith(`.${s}`));
  if (sidecar !== undefined) return `"${name}" ends in .${sidecar}, which the store keeps for an image's own ${sidecar}`;
  return undefined;
}

/** Every file of the store that belongs to image `name`: its sidecars, then the image (the order an import renames them in). */
export function filesOf(name: string): string[] {
  return [...SIDECARS.map((s) => sidecarOf(name, s)), name];
}

/** The text of an image's NAME.sha256, as `sha256sum` writes it (so `sha256sum -c` checks the image). */
export function sha256Line(name: string, sha256: string): string {
  return `${sha256}  ${name}\n`;
}

/** The digest a NAME.sha256 holds, or undefined when it holds none. */
export function sha256Of(text: string): string | undefined {
  return /^([0-9a-f]{64})\s/.exec(text)?.[1];
}

/** The file of an image's kernel or initrd, beside it. */
export function sidecarOf(image: string, which: Sidecar): string {
  return `${image}.${which}`;
}

/** Where an import writes a file before it is renamed into place: hidden, so nothing takes it for an image. */
export function importTemp(file: string): string {
  return `.${file}.importing`;
}

/** The images among the store's file names: neither an import under way nor a kernel or initrd. */
export function imagesIn(files: readonly string[]): string[] {
  const all = new Set(files);
  return files.filter((f) => !f.startsWith('.') && !SIDECARS.some((s) => f.endsWith(`.${s}`) && all.has(f.slice(0, -s.length - 1)))).sort();
}

/** What an interrupted import left: temporary files, and kernels or initrds whose image never arrived. */
export function importLeftovers(files: readonly string[]): string[] {
  const all = new Set(files);
  return files.filter((f) => f.endsWith('.importing') || SIDECARS.some((s) => f.endsWith(`.${s}`) && !f.startsWith('.') && !all.has(f.slice(0, -s.length - 1)))).sort();
}

/** Why there is no room to import `bytes`, keeping `reserveMiB` free; undefined when there is. */
export function roomProblem(dir: string, bytes: number, freeBytes: number, reserveMiB: number): string | undefined {
  const needed = bytes + reserveMiB * MIB;
  if (freeBytes >= needed) return undefined;
  return `disk full: ${dir} has ${Math.floor(freeBytes / MIB)} MiB free; the import needs ${Math.ceil(bytes / MIB)} MiB plus disk_reserve (${reserveMiB} MiB)`;
}

/** Why a disk of `bytes` is too small to import, or undefined. */
export function sizeProblem(path: string, bytes: number): string | undefined {
  return bytes < MIN_IMAGE_BYTES ? `golden image ${path} is ${bytes} bytes: too small for a disk (at least 1 MiB)` : undefined;
}

/** Whether `path` is a file of the store `dir` (only those are ever deleted). */
export function inStore(dir: string, path: string): boolean {
  return path.startsWith(`${dir}/`) && !path.slice(dir.length + 1).includes('/');
}

/** A golden image as staff see it: in the store, or used by a pool from elsewhere (the config file's). */
export interface ImageView {
  readonly name: string;
  readonly path: string;
  /** In the store (STATE_DIR/images); the only ones ever deleted. */
  readonly stored: boolean;
  readonly format?: string;
  readonly virtualSize?: number;
  /** Bytes on the host's disk. */
  readonly actualSize?: number;
  readonly kernel?: string;
  readonly initrd?: string;
  /** Pools cloning from it now, and pools that would roll back to it. */
  readonly currentOf: readonly string[];
  readonly previousOf: readonly string[];
  /** Running VMs whose disk is backed by it. */
  readonly liveVms: number;
  /** Why it cannot be cloned from; absent when it can. */
  readonly problem?: string;
  /** Of the image's bytes, as recorded at its import (NAME.sha256); absent when not known. */
  readonly sha256?: string;
  /** Set while it is being imported: bytes copied (or uploaded) of the total. */
  readonly importing?: { readonly copied: number; readonly total: number };
}
