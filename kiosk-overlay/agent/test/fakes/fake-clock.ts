import type { Clock } from '../../src/ports/clock.js';
import { Trace } from './trace.js';

interface Sleeper {
  readonly ms: number;
  readonly deadline: number;
  readonly resolve: () => void;
}

/** Time that moves only when a test says so: a sleep ends when the test advances past it (or its signal aborts). */
export class FakeClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];

  constructor(
    private readonly trace = new Trace(),
    start = Date.UTC(2030, 0, 1),
  ) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const sleeper: Sleeper = {
        ms,
        deadline: this.#now + ms,
        resolve: () => {
          signal?.removeEventListener('abort', sleeper.resolve);
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          resolve();
          this.trace.changed();
        },
      };
      signal?.addEventListener('abort', sleeper.resolve, { once: true });
      this.#sleepers.push(sleeper);
      this.trace.changed();
    });
  }

  /** Moves time forward and wakes every sleeper whose deadline has come. */
  advance(ms: number): void {
    this.#now += ms;
    for (const s of [...this.#sleepers]) if (s.deadline <= this.#now) s.resolve();
  }

  /** The durations of the pending sleeps, in the order they began. */
  pending(): number[] {
    return this.#sleepers.map((s) => s.ms);
  }

  /** Resolves once somebody sleeps for exactly `ms`. */
  sleepingFor(ms: number): Promise<void> {
    return this.trace.until(() => this.#sleepers.some((s) => s.ms === ms)).then(() => undefined);
  }

  /** Waits for a sleep of exactly `ms`, then advances time to its end (waking it, and any sleep due earlier). */
  async wake(ms: number): Promise<void> {
    const s = await this.trace.until(() => this.#sleepers.find((x) => x.ms === ms));
    this.advance(s.deadline - this.#now);
  }
}
