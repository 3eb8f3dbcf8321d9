import type { ActivitySource } from '../../src/ports/activity.js';
import { Trace } from './trace.js';

/** The visitor's input: the test says when there is some. */
export class FakeActivity implements ActivitySource {
  starts = 0;
  stops = 0;
  everyMs: number | undefined;
  #listener: (() => void) | undefined;

  constructor(private readonly trace = new Trace()) {}

  get watching(): boolean {
    return this.#listener !== undefined;
  }

  start(listener: () => void, everyMs: number): void {
    this.starts++;
    this.everyMs = everyMs;
    this.#listener = listener;
    this.trace.note('activity:start');
  }

  stop(): void {
    this.stops++;
    this.#listener = undefined;
    this.trace.note('activity:stop');
  }

  /** The visitor typed or moved the mouse (reported only while watched). */
  input(): void {
    this.#listener?.();
  }
}
