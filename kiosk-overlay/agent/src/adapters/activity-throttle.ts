/**
 * Passes activity on at most once per `everyMs`: at once for the first input
 * after a quiet period, and once more at the period's end if there was input
 * during it. The server's idle clock thus runs from the visitor's last input,
 * late by less than `everyMs`, never early: an active visitor is not cut off.
 * Shared by the activity adapters (X11 idle time, evdev).
 */
export class ActivityThrottle {
  readonly #listener: () => void;
  readonly #everyMs: number;
  readonly #onError: (e: unknown) => void;
  #last = -Infinity;
  #pending: NodeJS.Timeout | undefined;

  /** `onError`: the listener threw (it runs from timers, where nobody else would catch it). */
  constructor(listener: () => void, everyMs: number, onError: (e: unknown) => void) {
    if (!(everyMs >= 0)) throw new RangeError(`activity everyMs must be a number >= 0, not ${everyMs}`);
    this.#listener = listener;
    this.#everyMs = everyMs;
    this.#onError = onError;
  }

  activity(): void {
    if (this.#pending) return;
    const wait = this.#last + this.#everyMs - performance.now();
    if (wait <= 0) {
      this.#fire();
      return;
    }
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      this.#fire();
    }, wait);
    this.#pending.unref();
  }

  stop(): void {
    clearTimeout(this.#pending);
    this.#pending = undefined;
  }

  #fire(): void {
    this.#last = performance.now();
    try {
      this.#listener();
    } catch (e) {
      this.#onError(e);
    }
  }
}
