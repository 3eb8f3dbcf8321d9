import { createRequire } from 'node:module';
import type { Notifier } from '../ports/notifier.js';

interface SdNotify {
  ready(): void;
  stopping(): void;
  watchdog(): void;
  sendStatus(text: string): void;
  watchdogInterval(): number;
}

/**
 * sd_notify through the native sd-notify addon (Node has no datagram unix
 * sockets). Without NOTIFY_SOCKET (not under systemd) nothing is sent.
 */
export class SdNotifier implements Notifier {
  readonly #sd: SdNotify | undefined;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.#sd = env['NOTIFY_SOCKET'] ? (createRequire(import.meta.url)('sd-notify') as SdNotify) : undefined;
  }

  ready(): void {
    this.#sd?.ready();
  }
  status(text: string): void {
    this.#sd?.sendStatus(text);
  }
  watchdog(): void {
    this.#sd?.watchdog();
  }
  stopping(): void {
    this.#sd?.stopping();
  }
  watchdogIntervalMs(): number | undefined {
    // watchdogInterval() is WatchdogSec in ms (0 when unset); ping at half of it, as sd_watchdog_enabled(3) advises.
    const ms = this.#sd?.watchdogInterval() ?? 0;
    return ms > 0 ? ms / 2 : undefined;
  }
}
