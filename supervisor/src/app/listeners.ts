import { asTabulaError } from '../domain/errors.js';
import type { Disposable } from '../ports/disposable.js';
import type { Logger } from '../ports/logger.js';

/**
 * Subscribers to one kind of news. A subscriber that throws is logged and the
 * others still hear: a broken listener (e.g. the API) must not stop the pool
 * from being kept.
 */
export class Listeners<T> {
  readonly #set = new Set<(value: T) => void>();
  readonly #logger: Logger;
  readonly #event: string;

  /** `event` is what a throwing listener is logged as. */
  constructor(logger: Logger, event: string) {
    this.#logger = logger;
    this.#event = event;
  }

  add(listener: (value: T) => void): Disposable {
    this.#set.add(listener);
    return { dispose: () => this.#set.delete(listener) };
  }

  emit(value: T): void {
    for (const l of this.#set) {
      try {
        l(value);
      } catch (e) {
        this.#logger.err(this.#event, { error: asTabulaError(e).message });
      }
    }
  }
}
