/**
 * Switching a pool's golden image, and going back. A pool clones from its
 * current image; it keeps exactly one previous image for a rollback. A switch
 * is on probation until enough clones of the new image came up: if clones of
 * it fail to come up first, the pool goes back by itself.
 */

/** A golden image a pool can clone from: its disk and, for direct kernel boot, its own kernel (and initrd). */
export interface ImageRef {
  readonly path: string;
  /** Absent: the pool's configured kernel and initrd apply. Present: these, and no initrd unless given. */
  readonly kernel?: string;
  readonly initrd?: string;
}

/** Staff's choice of golden image for one pool, kept in STATE_DIR/pools.json. */
export interface PoolImages {
  readonly current: ImageRef;
  /** What a rollback goes back to. */
  readonly previous?: ImageRef;
  /** The config file's golden_image when staff switched: once the file names another, the file wins again. */
  readonly configImage: string;
  /** True once clones of `current` came up (or it was gone back to): failing clones no longer roll it back. */
  readonly confirmed: boolean;
}

export interface ImagesChanged {
  readonly images: PoolImages;
  /** Images the pool no longer uses (removed from the store once nothing else does). */
  readonly retired: readonly string[];
}

/**
 * `to` becomes the pool's current image, the current one its previous. The
 * image that was previous until now is retired, unless it is the config
 * file's (staff named that one; it is never deleted). Undefined when `to` is
 * the current image already (nothing to do).
 */
export function switchImages(state: PoolImages | undefined, fileImage: ImageRef, to: ImageRef): ImagesChanged | undefined {
  const current = state?.current ?? fileImage;
  if (current.path === to.path) return undefined;
  const old = state?.previous?.path;
  const retired = old !== undefined && old !== to.path && old !== current.path && old !== fileImage.path ? [old] : [];
  return { images: { current: to, previous: current, configImage: fileImage.path, confirmed: false }, retired };
}

/**
 * Back to the previous image (which then counts as confirmed: it ran before),
 * the current one kept as previous. Undefined when there is no previous image.
 */
export function rollbackImages(state: PoolImages | undefined): ImagesChanged | undefined {
  if (state?.previous === undefined) return undefined;
  return { images: { ...state, current: state.previous, previous: state.current, confirmed: true }, retired: [] };
}

/** A clone that came up (its guest agent connected) or failed to (boot timeout, died, a step failed). */
export interface CloneOutcome {
  readonly pool: string;
  /** The golden image the clone was made from, when known. */
  readonly image?: string;
  readonly ok: boolean;
  readonly reason?: string;
}

/** What is known of a switch on probation. Kept in memory: after a restart it starts afresh. */
export interface SwitchWatch {
  readonly image: string;
  readonly up: number;
  /** Failed clones of the image in a row. */
  readonly failed: number;
  readonly lastFailure?: string;
}

export interface ProbationRule {
  /** Clones of the new image that must come up to confirm the switch. */
  readonly confirmAfter: number;
  /** Failed clones in a row that roll it back (the pool's unhealthy threshold). */
  readonly rollbackAfter: number;
}

/** Two clones up confirm a switch (one, for a pool of one); none for an empty pool. */
export function confirmAfter(poolSize: number): number {
  return Math.max(1, Math.min(poolSize, 2));
}

export type ProbationVerdict = 'confirm' | 'rollback' | undefined;

/** Folds one clone's outcome into the watch; clones of other images do not count. */
export function watchClone(w: SwitchWatch, o: CloneOutcome, rule: ProbationRule): { readonly watch: SwitchWatch; readonly verdict: ProbationVerdict } {
  if (o.image !== w.image) return { watch: w, verdict: undefined };
  if (o.ok) {
    const { lastFailure: _l, ...rest } = w;
    const watch = { ...rest, up: w.up + 1, failed: 0 };
    return { watch, verdict: watch.up >= rule.confirmAfter ? 'confirm' : undefined };
  }
  const watch = { ...w, failed: w.failed + 1, ...(o.reason === undefined ? {} : { lastFailure: o.reason }) };
  return { watch, verdict: watch.failed >= rule.rollbackAfter ? 'rollback' : undefined };
}

/** The pool's health reason after it went back by itself. */
export function rollbackReason(from: string, to: string, w: SwitchWatch): string {
  return `golden image rolled back to ${to}: ${w.failed} clones of ${from} in a row failed to come up (last: ${w.lastFailure ?? 'unknown'})`;
}

/**
 * Retired images that may go now: used by no pool (current, previous, the
 * config file's) and backing no VM.
 */
export function removableImages(retired: Iterable<string>, inUse: ReadonlySet<string>): string[] {
  return [...new Set(retired)].filter((path) => !inUse.has(path));
}
