import { MINUTE_MS, trimHistory, type SavedHistory, type SavedMinute } from '../domain/pool-history.js';
import type { Clock } from '../ports/clock.js';
import type { SupervisorStatus } from './reconciler.js';
import { RingBuffer } from './ring-buffer.js';

export { MINUTE_MS };
/** A day of minutes: what the admin page plots. */
export const DAY_MINUTES = 1440;

/** One pool's minute. */
export interface HistorySample {
  /** The minute's start (ms since the epoch). */
  readonly at: number;
  /**
   * The fewest clean VMs the pool had during the minute: what a visitor
   * arriving then found at worst (a mean would hide the empty moments).
   */
  readonly clean: number;
  /** The size the pool was to keep. */
  readonly size: number;
  readonly handoffs: number;
  /** Hand-off waits (a station asking to its VM handed over) of the minute; null without hand-offs. */
  readonly waitMeanMs: number | null;
  readonly waitMaxMs: number | null;
}

export interface PoolHistorySnapshot {
  readonly minuteMs: number;
  readonly pools: ReadonlyArray<{ readonly name: string; readonly samples: readonly HistorySample[] }>;
}

/** A minute being added to. */
type Bucket = { -readonly [K in keyof SavedMinute]: SavedMinute[K] };

interface PoolTrack {
  readonly buckets: RingBuffer<Bucket>;
  /** The pool as last seen, carried into minutes in which nothing changed. */
  clean: number;
  size: number;
}

/**
 * The admin page's plots: per pool and minute, the depth (clean VMs) and the
 * hand-off waits, for the last day. Fed by status changes and hand-offs;
 * minutes in which nothing happened are filled in when the next news, or a
 * read, comes. `saved` and `restore` carry it over a restart (the minutes the
 * supervisor was stopped carry the depth it last saw, as quiet minutes do).
 */
export class PoolHistory {
  readonly #clock: Clock;
  readonly #minutes: number;
  readonly #pools = new Map<string, PoolTrack>();

  constructor(clock: Clock, minutes = DAY_MINUTES) {
    this.#clock = clock;
    this.#minutes = minutes;
  }

  /** A new status: each pool's depth now. Pools no longer configured are forgotten. */
  observe(status: SupervisorStatus): void {
    // Before the first round there are no pools yet, not none configured: what was restored stays.
    if (status.state === 'starting') return;
    const now = this.#clock.now();
    const names = new Set(status.pools.map((p) => p.name));
    for (const name of [...this.#pools.keys()]) if (!names.has(name)) this.#pools.delete(name);
    for (const p of status.pools) {
      let track = this.#pools.get(p.name);
      if (track === undefined) {
        track = { buckets: new RingBuffer<Bucket>(this.#minutes), clean: p.counts.clean, size: p.size };
        this.#pools.set(p.name, track);
      }
      const bucket = this.#current(track, now);
      track.clean = p.counts.clean;
      track.size = p.size;
      bucket.clean = Math.min(bucket.clean, p.counts.clean);
      bucket.size = p.size;
    }
  }

  /** A VM handed to a station after `waitMs`. Hand-offs of a pool not seen in a status yet are dropped. */
  handedOut(pool: string, waitMs: number): void {
    const track = this.#pools.get(pool);
    if (track === undefined || !Number.isFinite(waitMs)) return;
    const bucket = this.#current(track, this.#clock.now());
    bucket.handoffs++;
    bucket.waitSumMs += Math.max(0, waitMs);
    bucket.waitMaxMs = Math.max(bucket.waitMaxMs, waitMs);
  }

  snapshot(): PoolHistorySnapshot {
    const now = this.#clock.now();
    return {
      minuteMs: MINUTE_MS,
      pools: [...this.#pools].map(([name, track]) => {
        this.#current(track, now);
        return {
          name,
          samples: track.buckets.toArray().map((b) => ({
            at: b.at,
            clean: b.clean,
            size: b.size,
            handoffs: b.handoffs,
            waitMeanMs: b.handoffs === 0 ? null : Math.round(b.waitSumMs / b.handoffs),
            waitMaxMs: b.handoffs === 0 ? null : b.waitMaxMs,
          })),
        };
      }),
    };
  }

  /** The minutes as they stand, to be written away. */
  saved(): SavedHistory {
    return { version: 1, pools: Object.fromEntries([...this.#pools].map(([name, track]) => [name, track.buckets.toArray().map((b) => ({ ...b }))])) };
  }

  /**
   * Takes up a saved history, before the first status: the minutes of the
   * last day of the pools configured now (`pools`); the rest is dropped.
   */
  restore(saved: SavedHistory, pools: ReadonlySet<string>): void {
    for (const [name, minutes] of trimHistory(saved, pools, this.#clock.now(), this.#minutes)) {
      const last = minutes.at(-1) as SavedMinute;
      const track: PoolTrack = { buckets: new RingBuffer<Bucket>(this.#minutes), clean: last.clean, size: last.size };
      for (const m of minutes) track.buckets.push({ ...m });
      this.#pools.set(name, track);
    }
  }

  /** The bucket of the minute `now` is in, after filling the quiet minutes since the last one. */
  #current(track: PoolTrack, now: number): Bucket {
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const last = track.buckets.last();
    if (last !== undefined && last.at >= minute) return last;
    // Only the minutes the ring can still hold are worth making.
    const first = last === undefined ? minute : Math.max(last.at + MINUTE_MS, minute - (this.#minutes - 1) * MINUTE_MS);
    for (let at = first; at <= minute; at += MINUTE_MS) {
      track.buckets.push({ at, clean: track.clean, size: track.size, handoffs: 0, waitSumMs: 0, waitMaxMs: 0 });
    }
    return track.buckets.last() as Bucket;
  }
}
