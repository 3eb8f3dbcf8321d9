import type { Countdown, Screen, ScreenEvent, ScreenView } from '../../src/ports/screen.js';
import { Trace } from './trace.js';

type View<K extends ScreenView['kind']> = Extract<ScreenView, { kind: K }>;

/** Records what the agent shows; the test touches and chooses. */
export class FakeScreen implements Screen {
  readonly views: ScreenView[] = [];
  /** Every countdown call, `null` for "off". */
  readonly countdowns: (Countdown | null)[] = [];
  stops = 0;
  #listeners: ((e: ScreenEvent) => void)[] = [];
  #seenViews = 0;
  #seenCountdowns = 0;

  constructor(private readonly trace = new Trace()) {}

  show(view: ScreenView): void {
    this.views.push(view);
    this.trace.note(`show:${view.kind}`);
  }

  countdown(c: Countdown | null): void {
    this.countdowns.push(c);
    this.trace.note(c ? `countdown:${c.reason}:${c.seconds}` : 'countdown:off');
  }

  onEvent(listener: (e: ScreenEvent) => void): void {
    this.#listeners.push(listener);
  }

  stop(): Promise<void> {
    this.stops++;
    this.trace.note('screen:stop');
    return Promise.resolve();
  }

  // ---------------------------------------------------------------- the test's side

  get current(): ScreenView | undefined {
    return this.views.at(-1);
  }

  emit(e: ScreenEvent): void {
    for (const l of this.#listeners) l(e);
  }

  touch(): void {
    this.emit({ kind: 'touched' });
  }

  choose(pool: string): void {
    this.emit({ kind: 'chose', pool });
  }

  /** From now on `nextView` only looks at views shown after this call. */
  mark(): void {
    this.#seenViews = this.views.length;
  }

  /**
   * The next view of `kind` (that `match` accepts) shown after the last one
   * this method returned; views of other kinds in between are passed over.
   */
  async nextView<K extends ScreenView['kind']>(kind: K, match: (v: View<K>) => boolean = () => true): Promise<View<K>> {
    const i = await this.trace.until(() => {
      for (let i = this.#seenViews; i < this.views.length; i++) {
        const v = this.views[i]!;
        if (v.kind === kind && match(v as View<K>)) return i + 1;
      }
      return undefined;
    });
    this.#seenViews = i;
    return this.views[i - 1] as View<K>;
  }

  /** The next countdown call after the last one this method returned. */
  async nextCountdown(): Promise<Countdown | null> {
    const i = await this.trace.until(() => (this.countdowns.length > this.#seenCountdowns ? this.#seenCountdowns + 1 : undefined));
    this.#seenCountdowns = i;
    return this.countdowns[i - 1]!;
  }
}
