import type { Notifier } from '../../src/ports/notifier.js';

export class FakeNotifier implements Notifier {
  readyCount = 0;
  stoppingCount = 0;
  watchdogCount = 0;
  readonly statuses: string[] = [];
  /** What watchdogIntervalMs() answers; undefined is "no watchdog", as outside systemd. */
  watchdogMs: number | undefined = undefined;
  /** Runs inside each watchdog ping: lets a test act at a precise point of the supervisor's loop. */
  onWatchdog: (() => void) | undefined = undefined;

  ready(): void {
    this.readyCount++;
  }

  status(text: string): void {
    this.statuses.push(text);
  }

  watchdog(): void {
    this.watchdogCount++;
    this.onWatchdog?.();
  }

  stopping(): void {
    this.stoppingCount++;
  }

  watchdogIntervalMs(): number | undefined {
    return this.watchdogMs;
  }
}
