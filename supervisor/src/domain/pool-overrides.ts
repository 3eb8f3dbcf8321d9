import type { ImageRef, PoolImages } from './golden-switch.js';

/**
 * What staff changed on a pool through the API, kept across restarts and
 * config reloads: a size (until someone edits the pool's size in the file,
 * which then wins again), whether the pool is drained, and its golden image
 * (until someone edits the pool's golden_image in the file).
 */
export interface PoolOverride {
  readonly size?: number;
  /** The file's size when staff resized: a different one in the file means the file was edited since. */
  readonly configSize?: number;
  readonly drained?: boolean;
  readonly image?: PoolImages;
  /** Images the pool used and no longer does: deleted from the store once nothing else uses them. */
  readonly retired?: readonly string[];
}

export type PoolOverrides = Readonly<Record<string, PoolOverride>>;

export interface OverridesJudged {
  /** What still applies to the config. */
  readonly kept: PoolOverrides;
  /** What no longer applies, and why (for the journal). */
  readonly dropped: ReadonlyArray<{ readonly pool: string; readonly what: 'size' | 'drained' | 'image'; readonly why: string }>;
}

/**
 * The stored overrides against the config's pools (name → size and
 * golden_image in the file): a pool no longer configured loses its overrides
 * (its images are retired); a resize or an image switch whose key in the file
 * changed since is superseded by the file.
 */
export function judgeOverrides(configSizes: ReadonlyMap<string, number>, stored: PoolOverrides, configImages: ReadonlyMap<string, string> = new Map()): OverridesJudged {
  const kept: Record<string, PoolOverride> = {};
  const dropped: Array<OverridesJudged['dropped'][number]> = [];
  for (const [pool, o] of Object.entries(stored)) {
    const fileSize = configSizes.get(pool);
    const retired = new Set(o.retired ?? []);
    // The config file's own image is staff's: never deleted.
    const retire = (images: PoolImages) => [images.current, images.previous].forEach((r?: ImageRef) => r && r.path !== images.configImage && retired.add(r.path));
    if (fileSize === undefined) {
      if (o.size !== undefined) dropped.push({ pool, what: 'size', why: 'the pool is no longer configured' });
      if (o.drained === true) dropped.push({ pool, what: 'drained', why: 'the pool is no longer configured' });
      if (o.image !== undefined) {
        dropped.push({ pool, what: 'image', why: 'the pool is no longer configured' });
        retire(o.image);
      }
      // Its images stay listed until they are deleted, or nothing would ever delete them.
      if (retired.size > 0) kept[pool] = { retired: [...retired] };
      continue;
    }
    let next: PoolOverride = o.drained === true ? { drained: true } : {};
    if (o.size !== undefined && o.configSize === fileSize) next = { ...next, size: o.size, configSize: o.configSize };
    else if (o.size !== undefined) dropped.push({ pool, what: 'size', why: `the config file's size changed to ${fileSize} since it was resized` });
    const fileImage = configImages.get(pool);
    if (o.image !== undefined && (fileImage === undefined || o.image.configImage === fileImage)) next = { ...next, image: o.image };
    else if (o.image !== undefined) {
      dropped.push({ pool, what: 'image', why: `the config file's golden_image changed to ${fileImage} since the image was switched` });
      retire(o.image);
    }
    if (retired.size > 0) next = { ...next, retired: [...retired] };
    if (Object.keys(next).length > 0) kept[pool] = next;
  }
  return { kept, dropped };
}

/** Pools drained by staff. */
export function drainedPools(overrides: PoolOverrides): Set<string> {
  return new Set(Object.entries(overrides).flatMap(([pool, o]) => (o.drained === true ? [pool] : [])));
}

/** The overrides as read from storage, if they are well formed. */
export function isPoolOverrides(v: unknown): v is PoolOverrides {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const count = (x: unknown) => x === undefined || (typeof x === 'number' && Number.isInteger(x) && x >= 0);
  const paths = (x: unknown) => x === undefined || (Array.isArray(x) && x.every(isPath));
  return Object.values(v).every(
    (o: unknown) =>
      o !== null &&
      typeof o === 'object' &&
      count((o as PoolOverride).size) &&
      count((o as PoolOverride).configSize) &&
      ['undefined', 'boolean'].includes(typeof (o as PoolOverride).drained) &&
      ((o as PoolOverride).image === undefined || isPoolImages((o as PoolOverride).image)) &&
      paths((o as PoolOverride).retired),
  );
}

function isPoolImages(v: unknown): boolean {
  const i = v as PoolImages | null;
  return i !== null && typeof i === 'object' && isImageRef(i.current) && (i.previous === undefined || isImageRef(i.previous)) && isPath(i.configImage) && typeof i.confirmed === 'boolean';
}

function isImageRef(v: unknown): boolean {
  const r = v as ImageRef | null;
  return r !== null && typeof r === 'object' && isPath(r.path) && (r.kernel === undefined || isPath(r.kernel)) && (r.initrd === undefined || isPath(r.initrd));
}

function isPath(x: unknown): x is string {
  return typeof x === 'string' && x.startsWith('/');
}
