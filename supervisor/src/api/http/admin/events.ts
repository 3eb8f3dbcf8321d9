import type { Disposable } from '../../../ports/disposable.js';
import type { Clock } from '../../../ports/clock.js';
import type { AdminApi } from './admin-api.js';
import type { EventSink } from './http.js';
import { overviewOf, sessionEntryView, sessionStartedView } from './views.js';

/** How soon a browser reconnects after the stream broke (the SSE `retry:` field). */
const RETRY_MS = 3_000;

interface Client {
  readonly sink: EventSink;
  readonly login: string;
}

/**
 * Server-Sent Events for the open admin pages: the overview whenever the
 * status really changed, and each session started or ended, as they happen.
 * The browser only listens; nothing polls.
 */
export class EventHub {
  readonly #api: Pick<AdminApi, 'status' | 'onStatus' | 'onSessionStarted' | 'onSessionEnded'>;
  readonly #clock: Clock;
  readonly #clients = new Set<Client>();
  /** The overview last sent, to send only changes. */
  #lastOverview = '';
  #subscriptions: Disposable[] = [];

  constructor(api: Pick<AdminApi, 'status' | 'onStatus' | 'onSessionStarted' | 'onSessionEnded'>, clock: Clock) {
    this.#api = api;
    this.#clock = clock;
  }

  start(): Disposable {
    this.#subscriptions = [
      this.#api.onStatus(() => this.#overviewChanged()),
      this.#api.onSessionStarted((e) => this.#broadcast('session-started', sessionStartedView(e))),
      this.#api.onSessionEnded((e) => this.#broadcast('session-ended', sessionEntryView(e))),
    ];
    return {
      dispose: () => {
        for (const s of this.#subscriptions) s.dispose();
        this.#subscriptions = [];
        for (const c of [...this.#clients]) this.#drop(c);
      },
    };
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** A new stream for login `login`: it gets the overview at once, then the news. */
  open(login: string, sink: EventSink): Disposable {
    const client = { sink, login };
    this.#clients.add(client);
    sink.send(`retry: ${RETRY_MS}\n\n`);
    sink.send(message('overview', this.#overview().value));
    return { dispose: () => this.#clients.delete(client) };
  }

  /**
   * Keeps idle streams open through proxies and notices dead ones; closes the
   * streams of logins that ended (`alive` says which still hold).
   */
  heartbeat(alive: (login: string) => boolean): void {
    for (const c of [...this.#clients]) {
      if (alive(c.login)) c.sink.send(': keep-alive\n\n');
      else this.#drop(c);
    }
  }

  /** Ends the streams of a login (logout). */
  closeLogin(login: string): void {
    for (const c of [...this.#clients]) if (c.login === login) this.#drop(c);
  }

  #overview(): { key: string; value: unknown } {
    const view = overviewOf(this.#api.status());
    const key = JSON.stringify(view);
    return { key, value: { ...view, now: this.#clock.now() } };
  }

  #overviewChanged(): void {
    const { key, value } = this.#overview();
    if (key === this.#lastOverview) return;
    this.#lastOverview = key;
    this.#broadcast('overview', value);
  }

  #broadcast(event: string, data: unknown): void {
    const text = message(event, data);
    for (const c of this.#clients) c.sink.send(text);
  }

  #drop(c: Client): void {
    this.#clients.delete(c);
    c.sink.close();
  }
}

/** One SSE message; JSON holds no raw newline, so one `data:` line carries it. */
export function message(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
