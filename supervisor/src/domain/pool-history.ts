/** The plots' time step. */
export const MINUTE_MS = 60_000;

/** One pool's minute as kept: enough to go on adding to it after a restart. */
export interface SavedMinute {
  /** The minute's start (ms since the epoch). */
  readonly at: number;
  /** The fewest clean VMs during the minute. */
  readonly clean: number;
  readonly size: number;
  readonly handoffs: number;
  readonly waitSumMs: number;
  readonly waitMaxMs: number;
}

/** The admin page's plots as written to the state directory. */
export interface SavedHistory {
  readonly version: 1;
  /** Per pool, its minutes, oldest first. */
  readonly pools: Readonly<Record<string, readonly SavedMinute[]>>;
}

const FIELDS = ['at', 'clean', 'size', 'handoffs', 'waitSumMs', 'waitMaxMs'] as const;

/** A saved history as read back, if it is well formed (numbers at least 0, whole minutes). */
export function isSavedHistory(v: unknown): v is SavedHistory {
  const h = v as SavedHistory | null;
  if (h === null || typeof h !== 'object' || h.version !== 1 || h.pools === null || typeof h.pools !== 'object' || Array.isArray(h.pools)) return false;
  return Object.values(h.pools).every(
    (minutes: unknown) =>
      Array.isArray(minutes) &&
      minutes.every((m: unknown) => m !== null && typeof m === 'object' && FIELDS.every((f) => Number.isFinite((m as SavedMinute)[f]) && (m as SavedMinute)[f] >= 0) && (m as SavedMinute).at % MINUTE_MS === 0),
  );
}

/**
 * What of a saved history is still worth having at `now`: the pools still
 * configured, the minutes of the last `minutes` (the current one included;
 * none from the future), one per minute, oldest first.
 */
export function trimHistory(saved: SavedHistory, pools: ReadonlySet<string>, now: number, minutes: number): Map<string, SavedMinute[]> {
  const current = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const oldest = current - (minutes - 1) * MINUTE_MS;
  const kept = new Map<string, SavedMinute[]>();
  for (const [pool, list] of Object.entries(saved.pools)) {
    if (!pools.has(pool)) continue;
    const byMinute = new Map(list.filter((m) => m.at >= oldest && m.at <= current).map((m) => [m.at, m]));
    const sorted = [...byMinute.values()].sort((a, b) => a.at - b.at);
    if (sorted.length > 0) kept.set(pool, sorted);
  }
  return kept;
}
