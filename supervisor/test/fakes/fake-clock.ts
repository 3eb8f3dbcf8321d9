import type { Clock } from '../../src/ports/clock.js';

interface Sleeper {
  readonly deadline: number;
  readonly resolve: () => void;
}

/** Time that moves only when a test says so. */
export class FakeClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  #onSleep: (() => void)[] = [];

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const sleeper: Sleeper = {
        deadline: this.#now + ms,
        resolve: () => {
          signal?.removeEventListener('abort', sleeper.resolve);
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          resolve();
        },
      };
      signal?.addEventListener('abort', sleeper.resolve, { once: true });
      this.#sleepers.push(sleeper);
      const waiting = this.#onSleep;
      this.#onSleep = [];
      for (const w of waiting) w();
    });
  }

  /** Moves time forward and wakes every sleeper whose deadline has come. */
  advance(ms: number): void {
    this.#now += ms;
    for (const s of [...this.#sleepers]) if (s.deadline <= this.#now) s.resolve();
  }

  /** Resolves once somebody is sleeping (at once if somebody already is). */
  sleeping(): Promise<void> {
    if (this.#sleepers.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.#onSleep.push(resolve));
  }

  /** The deadlines of the pending sleeps, earliest first. */
  deadlines(): number[] {
    return this.#sleepers.map((s) => s.deadline).sort((a, b) => a - b);
  }
}
