import { asTabulaError, TabulaError } from '../../domain/errors.js';
import type { Logger } from '../../ports/logger.js';
import type { Bus } from './call.js';
import { connectSystemBus } from './connect.js';

/** What must be set up again on every new connection (match rules, exported objects, the name). */
export type OnConnected = (bus: Bus) => Promise<void>;

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5_000;

/**
 * The supervisor's connection to the system bus, kept up: when the bus goes
 * away (dbus-daemon restarted) it connects again with backoff and runs every
 * OnConnected handler on the new connection. Meanwhile `current()` throws
 * bus-unavailable, which the reconciler reports as degraded.
 */
export class BusSession {
  readonly #logger: Logger;
  readonly #connect: () => Promise<Bus>;
  readonly #handlers: OnConnected[] = [];
  #bus: Bus | undefined;
  #closed = false;

  constructor(logger: Logger, connect: () => Promise<Bus> = () => connectSystemBus()) {
    this.#logger = logger;
    this.#connect = connect;
  }

  /** Registers a handler; it runs on the first connection (start) and on every reconnection. */
  onConnected(handler: OnConnected): void {
    this.#handlers.push(handler);
  }

  /** Connects the first time; throws when the bus is not there (the daemon cannot start without it). */
  async start(): Promise<void> {
    const bus = await this.#connect();
    this.#adopt(bus);
    for (const h of this.#handlers) await h(bus);
  }

  current(): Bus {
    if (this.#bus === undefined) throw new TabulaError('bus-unavailable', 'the system bus connection is lost; reconnecting', { retryable: true });
    return this.#bus;
  }

  close(): void {
    this.#closed = true;
    this.#bus?.disconnect();
    this.#bus = undefined;
  }

  #adopt(bus: Bus): void {
    this.#bus = bus;
    bus.on('error', (e: Error) => this.#logger.debug('bus-error', { error: e.message }));
    // dbus-next does not tell when the connection ends; its socket does.
    const stream = (bus as unknown as { _connection?: { stream?: NodeJS.EventEmitter } })._connection?.stream;
    stream?.once('close', () => this.#lost(bus));
  }

  #lost(bus: Bus): void {
    if (this.#closed || this.#bus !== bus) return;
    this.#bus = undefined;
    this.#logger.err('bus-lost', { retry: `from ${RETRY_FIRST_MS} ms, doubling to ${RETRY_MAX_MS} ms` });
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    let delay = RETRY_FIRST_MS;
    let attempts = 0;
    while (!this.#closed) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
      attempts++;
      let bus: Bus | undefined;
      try {
        bus = await this.#connect();
        for (const h of this.#handlers) await h(bus);
        if (this.#closed) return bus.disconnect();
        this.#adopt(bus);
        this.#logger.notice('bus-reconnected', { attempts });
        return;
      } catch (e) {
        bus?.disconnect();
        if (attempts === 1 || attempts % 10 === 0) this.#logger.warning('bus-reconnect-failed', { attempts, error: asTabulaError(e).message });
      }
    }
  }
}
