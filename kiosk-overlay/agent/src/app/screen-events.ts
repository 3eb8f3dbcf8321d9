import type { Screen, ScreenEvent } from '../ports/screen.js';

/**
 * The screen's events as a queue the agent waits on, one step at a time.
 * Events that arrive while nobody waits are kept only if still meaningful:
 * a touch made while the agent was busy must not start the next visit.
 */
export class ScreenEvents {
  #queue: ScreenEvent[] = [];
  #waiter: (() => void) | undefined;

  constructor(screen: Screen) {
    screen.onEvent((e) => {
      this.#queue.push(e);
      this.#waiter?.();
    });
  }

  /** Forgets what happened before now (a new screen, a new question). */
  clear(): void {
    this.#queue = [];
  }

  /** The next event of one of `kinds`; 'timeout' after `timeoutMs`, 'aborted' when `signal` aborts. */
  async next<K extends ScreenEvent['kind']>(
    kinds: readonly K[],
    timeoutMs: number | undefined,
    signal: AbortSignal,
  ): Promise<Extract<ScreenEvent, { kind: K }> | 'timeout' | 'aborted'> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      const i = this.#queue.findIndex((e) => (kinds as readonly string[]).includes(e.kind));
      if (i >= 0) {
        const [e] = this.#queue.splice(0, i + 1).slice(-1);
        return e as Extract<ScreenEvent, { kind: K }>;
      }
      this.#queue = [];
      if (signal.aborted) return 'aborted';
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.#waiter = undefined;
          resolve();
        };
        const timer = left === undefined ? undefined : setTimeout(done, left);
        signal.addEventListener('abort', done, { once: true });
        this.#waiter = done;
      });
    }
  }
}
