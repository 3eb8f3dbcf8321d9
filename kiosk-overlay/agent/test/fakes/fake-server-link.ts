import { StationError } from '../../src/domain/errors.js';
import type { ServerConnection, ServerLink } from '../../src/ports/server-link.js';
import { Trace } from './trace.js';

/**
 * One connection to the scripted server: the test reads what the station
 * sent (`nextSent`) and speaks for the server (`push`, `hangUp`).
 */
export class FakeServerConnection implements ServerConnection {
  /** The lines the station sent while the connection was open. */
  readonly sent: string[] = [];
  /** Lines the station tried to send on a connection that was already gone (a real socket drops them). */
  readonly sentAfterClose: string[] = [];
  readonly closed: Promise<void>;
  closedByStation = false;
  closedByServer = false;
  #inbox: string[] = [];
  #readers: ((line: string) => void)[] = [];
  #seen = 0;
  #markClosed!: () => void;

  constructor(
    private readonly trace: Trace,
    readonly index: number,
  ) {
    this.closed = new Promise((resolve) => (this.#markClosed = resolve));
  }

  get gone(): boolean {
    return this.closedByStation || this.closedByServer;
  }

  send(line: string): void {
    if (this.gone) {
      this.sentAfterClose.push(line);
      this.trace.changed();
      return;
    }
    this.sent.push(line);
    this.trace.note(`sent:${line}`);
  }

  next(): Promise<string> {
    const line = this.#inbox.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.gone) return Promise.resolve('closed');
    const read = new Promise<string>((resolve) => this.#readers.push(resolve));
    this.trace.changed();
    return read;
  }

  close(): void {
    if (this.closedByStation) return;
    this.closedByStation = true;
    this.#gone();
    this.trace.note(`closed-by-station:${this.index}`);
  }

  // ---------------------------------------------------------------- the test's side

  /** The server says these lines. */
  push(...lines: string[]): void {
    for (const line of lines) {
      const reader = this.#readers.shift();
      if (reader) reader(line);
      else this.#inbox.push(line);
    }
  }

  /** The server closes the connection (lines already sent are still read first). */
  hangUp(): void {
    if (this.closedByServer) return;
    this.closedByServer = true;
    this.#gone();
    this.trace.changed();
  }

  /** Whether the station waits for a line from the server now. */
  get reading(): boolean {
    return this.#readers.length > 0;
  }

  /** The next line the station sent, after the ones this method already returned. */
  async nextSent(): Promise<string> {
    const line = await this.trace.until(() => this.sent[this.#seen]);
    this.#seen++;
    return line;
  }

  /** Lines sent that `nextSent` has not returned yet. */
  unread(): string[] {
    return this.sent.slice(this.#seen);
  }

  #gone(): void {
    this.#markClosed();
    for (const r of this.#readers.splice(0)) r('closed');
  }
}

/**
 * The server's signal port: it takes connections, or refuses them while
 * `refusing` is set, or while `server` (the station's settings, as main.ts
 * gives the real link) names no server.
 */
export class FakeServerLink implements ServerLink {
  readonly connections: FakeServerConnection[] = [];
  /** The timeouts `connect` was given, one per attempt. */
  readonly timeouts: number[] = [];
  refusing = false;
  server: () => string | undefined = () => '169.254.24.1';
  #seen = 0;

  constructor(private readonly trace = new Trace()) {}

  get attempts(): number {
    return this.timeouts.length;
  }

  connect(timeoutMs: number): Promise<ServerConnection> {
    this.timeouts.push(timeoutMs);
    if (this.server() === undefined) {
      this.trace.note('link:no-server');
      return Promise.reject(new StationError('server-unknown', 'no server known: no DHCP lease names one and server_ip is not set'));
    }
    if (this.refusing) {
      this.trace.note('link:refused');
      return Promise.reject(new StationError('server-unreachable', '169.254.24.1:5905: ECONNREFUSED'));
    }
    const conn = new FakeServerConnection(this.trace, this.connections.length);
    this.connections.push(conn);
    this.trace.note(`link:connected:${conn.index}`);
    return Promise.resolve(conn);
  }

  /** The next connection the station opened, after the ones this method already returned. */
  async nextConnection(): Promise<FakeServerConnection> {
    const conn = await this.trace.until(() => this.connections[this.#seen]);
    this.#seen++;
    return conn;
  }
}
