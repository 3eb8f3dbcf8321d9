/**
 * What the fakes saw, in order ("show:slideshow", "kiosk:endAll", …), and a
 * way for a test to wait, without timers, until the code under test has done
 * something: every fake calls `changed()` (or `note()`), and `until` checks
 * its probe again each time.
 */
export class Trace {
  readonly events: string[] = [];
  #waiters = new Set<() => void>();

  /** Records an event, and wakes whoever waits. */
  note(event: string): void {
    this.events.push(event);
    this.changed();
  }

  /** Something changed that is not worth an event (a sleeper, a log line): look again. */
  changed(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves with the probe's value once it is neither undefined nor false. */
  until<T>(probe: () => T | undefined | false): Promise<T> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const v = probe();
        if (v === undefined || v === false) return false;
        this.#waiters.delete(check);
        resolve(v);
        return true;
      };
      if (!check()) this.#waiters.add(check);
    });
  }

  /** The events that start with one of `prefixes`, in order. */
  of(...prefixes: string[]): string[] {
    return this.events.filter((e) => prefixes.some((p) => e.startsWith(p)));
  }
}
