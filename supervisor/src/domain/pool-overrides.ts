import type { ImageRef, PoolImages } from './golden-switch.js';
import { isTimeoutKey, timeoutProblem, type PoolTimeouts, type TimeoutKey } from './pool-timeouts.js';

/**
 * What staff changed on a pool through the API, kept across restarts and
 * config reloads: a size (until someone edits the pool's size in the file,
 * which then wins again), whether the pool is drained, its golden image
 * (until someone edits the pool's golden_image in the file), and its timeouts
 * (each until someone edits that timeout in the file).
 */
export interface PoolOverride {
  readonly size?: number;
  /** The file's size when staff resized: a different one in the file means the file was edited since. */
  readonly configSize?: number;
  readonly drained?: boolean;
  readonly image?: PoolImages;
  /** Images the pool used and no longer does: deleted from the store once nothing else uses them. */
  readonly retired?: readonly string[];
  /** Timeouts staff set, each with the file's value then (a different one in the file means the file was edited since). */
  readonly timeouts?: TimeoutOverrides;
}

export type TimeoutOverrides = Readonly<Partial<Record<TimeoutKey, { readonly seconds: number; readonly configSeconds: number }>>>;

export type PoolOverrides = Readonly<Record<string, PoolOverride>>;

export interface OverridesJudged {
  /** What still applies to the config. */
  readonly kept: PoolOverrides;
  /** What no longer applies, and why (for the journal). */
  readonly dropped: ReadonlyArray<{ readonly pool: string; readonly what: 'size' | 'drained' | 'image' | TimeoutKey; readonly why: string }>;
}

/**
 * The stored overrides against the config's pools (name → size, golden_image
 * and timeouts in the file): a pool no longer configured loses its overrides
 * (its images are retired); a resize, an image switch or a timeout whose key
 * in the file changed since is superseded by the file.
 */
export function judgeOverrides(
  configSizes: ReadonlyMap<string, number>,
  stored: PoolOverrides,
  configImages: ReadonlyMap<string, string> = new Map(),
  configTimeouts: ReadonlyMap<string, PoolTimeouts> = new Map(),
): OverridesJudged {
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
      for (const key of Object.keys(o.timeouts ?? {}).filter(isTimeoutKey)) dropped.push({ pool, what: key, why: 'the pool is no longer configured' });
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
    const timeouts = judgeTimeouts(o.timeouts ?? {}, configTimeouts.get(pool), (what, why) => dropped.push({ pool, what, why }));
    if (Object.keys(timeouts).length > 0) next = { ...next, timeouts };
    if (Object.keys(next).length > 0) kept[pool] = next;
  }
  return { kept, dropped };
}

/** The timeouts whose value in the file is still the one staff changed them from (all of them without the file's). */
function judgeTimeouts(stored: TimeoutOverrides, file: PoolTimeouts | undefined, drop: (what: TimeoutKey, why: string) => void): TimeoutOverrides {
  const kept: Partial<Record<TimeoutKey, { seconds: number; configSeconds: number }>> = {};
  for (const [key, o] of Object.entries(stored)) {
    if (!isTimeoutKey(key) || o === undefined) continue;
    if (file === undefined || file[key] === o.configSeconds) kept[key] = o;
    else drop(key, `the config file's ${key} changed to ${file[key]} since it was set`);
  }
  return kept;
}

/** The timeouts staff set, in seconds. */
export function timeoutValues(overrides: TimeoutOverrides): Partial<PoolTimeouts> {
  return Object.fromEntries(Object.entries(overrides).map(([k, o]) => [k, o.seconds]));
}

/**
 * The timeouts after staff set `changes`, against the file's: a value back to
 * the file's is forgotten (nothing left to remember), others remember the
 * file's value of now.
 */
export function withTimeoutChanges(stored: TimeoutOverrides, changes: Partial<PoolTimeouts>, file: PoolTimeouts): TimeoutOverrides {
  const next: Partial<Record<TimeoutKey, { seconds: number; configSeconds: number }>> = { ...stored };
  for (const [key, seconds] of Object.entries(changes) as Array<[TimeoutKey, number]>) {
    if (seconds === file[key]) delete next[key];
    else next[key] = { seconds, configSeconds: file[key] };
  }
  return next;
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
      paths((o as PoolOverride).retired) &&
      ((o as PoolOverride).timeouts === undefined || isTimeoutOverrides((o as PoolOverride).timeouts)),
  );
}

/** Known keys only, each within its bounds (a hand-edited value out of them makes the whole record unusable). */
function isTimeoutOverrides(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  return Object.entries(v).every(([key, o]: [string, unknown]) => {
    const t = o as { seconds?: unknown; configSeconds?: unknown } | null;
    return isTimeoutKey(key) && t !== null && typeof t === 'object' && timeoutProblem(key, t.seconds) === undefined && timeoutProblem(key, t.configSeconds) === undefined;
  });
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
