import { asTabulaError } from '../domain/errors.js';
import type { Clock } from '../ports/clock.js';
import type { HistoryStore } from '../ports/history-store.js';
import type { Logger } from '../ports/logger.js';
import type { PoolHistory } from './pool-history.js';

/** How often the plots are written away (and at a clean stop): a crash loses at most this much of them. */
export const HISTORY_SAVE_MS = 5 * 60_000;

export interface HistoryKeeperDeps {
  readonly store: HistoryStore;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Carries the plots over restarts: taken up at start (a file that cannot be
 * used is said once and the plots start afresh), written every few minutes
 * and at a clean stop, one write at a time.
 */
export class HistoryKeeper {
  readonly #history: PoolHistory;
  readonly #deps: HistoryKeeperDeps;
  #writing: Promise<void> = Promise.resolve();
  #failing = false;

  constructor(history: PoolHistory, deps: HistoryKeeperDeps) {
    this.#history = history;
    this.#deps = deps;
  }

  /** Takes up the saved minutes of the pools configured now; never fails. */
  async load(pools: ReadonlySet<string>): Promise<void> {
    try {
      const saved = await this.#deps.store.load();
      if (saved !== undefined) this.#history.restore(saved, pools);
    } catch (e) {
      const err = asTabulaError(e);
      this.#deps.logger.warning('admin-history-unusable', { code: err.code, error: err.message, using: 'an empty history' });
    }
  }

  /** Writes the plots now; a failure is said once (until a write succeeds again), never thrown. */
  save(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      try {
        await this.#deps.store.save(this.#history.saved());
        if (this.#failing) this.#deps.logger.notice('admin-history-saved', {});
        this.#failing = false;
      } catch (e) {
        const err = asTabulaError(e);
        if (!this.#failing) this.#deps.logger.warning('admin-history-save-failed', { code: err.code, error: err.message });
        this.#failing = true;
      }
    });
    return this.#writing;
  }

  /** Saves every `everyMs` until `stop` aborts (the last save is the stopper's to make). */
  async run(stop: AbortSignal, everyMs = HISTORY_SAVE_MS): Promise<void> {
    while (!stop.aborted) {
      await this.#deps.clock.sleep(everyMs, stop);
      if (!stop.aborted) await this.save();
    }
  }
}
