import { createServer, type Server, type Socket } from 'node:net';
import { TabulaError } from '../domain/errors.js';
import type { Disposable } from '../ports/disposable.js';
import type { Logger } from '../ports/logger.js';
import type { StationConnection, StationListener, StationListenerLimits } from '../ports/station-listener.js';

/** Output a slow reader may leave unread before it is cut off: a station never needs more. */
const MAX_PENDING_OUTPUT = 64 * 1024;

/** The signal port over TCP. */
export class TcpStationListener implements StationListener {
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async listen(address: string, port: number, limits: StationListenerLimits, handle: (c: StationConnection) => Promise<void>): Promise<Disposable> {
    const sockets = new Set<Socket>();
    const perStation = new Map<string, number>();
    const server: Server = createServer({ allowHalfOpen: false }, (socket) => {
      const station = plainAddress(socket.remoteAddress);
      const mine = perStation.get(station) ?? 0;
      if (sockets.size >= limits.maxConnections || mine >= limits.maxPerStation) {
        const reason = mine >= limits.maxPerStation ? 'too many connections from this station' : 'too many connections';
        this.#logger.warning('station-refused', { station, reason });
        socket.end(mine >= limits.maxPerStation ? 'ERR 429 too-many-connections\n' : 'ERR 503 busy\n');
        socket.destroy();
        return;
      }
      sockets.add(socket);
      perStation.set(station, mine + 1);
      socket.once('close', () => {
        sockets.delete(socket);
        const n = (perStation.get(station) ?? 1) - 1;
        if (n > 0) perStation.set(station, n);
        else perStation.delete(station);
      });
      const conn = new TcpStationConnection(socket, limits.maxLineBytes);
      handle(conn).catch((e: unknown) => {
        this.#logger.err('station-handler-failed', { station: conn.remoteAddress, error: String(e) });
      }).finally(() => conn.close());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new TabulaError('internal', `cannot listen on ${address}:${port}: ${e.message}`, { cause: e })));
      server.listen({ host: address, port, exclusive: true }, () => resolve());
    });
    server.on('error', (e) => this.#logger.err('signal-port-error', { error: e.message }));
    return {
      dispose: () => {
        server.close();
        for (const s of sockets) s.destroy();
      },
    };
  }
}

class TcpStationConnection implements StationConnection {
  readonly remoteAddress: string;
  readonly #socket: Socket;
  readonly #closed = new AbortController();
  readonly #maxLine: number;
  #buffer = '';
  #lines: string[] = [];
  #waiter: (() => void) | undefined;

  constructor(socket: Socket, maxLine: number) {
    this.#socket = socket;
    this.#maxLine = maxLine;
    this.remoteAddress = plainAddress(socket.remoteAddress);
    socket.setEncoding('latin1');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('close', () => this.#onClose());
    socket.on('error', () => this.#onClose());
  }

  get closed(): AbortSignal {
    return this.#closed.signal;
  }

  get pendingBytes(): number {
    return this.#buffer.length;
  }

  nextLine(timeoutMs: number): Promise<string | 'timeout' | 'closed'> {
    const ready = this.#lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#closed.signal.aborted) return Promise.resolve('closed');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve('timeout');
      }, timeoutMs);
      this.#waiter = () => {
        clearTimeout(timer);
        this.#waiter = undefined;
        const line = this.#lines.shift();
        resolve(line ?? 'closed');
      };
    });
  }

  write(line: string): void {
    if (this.#closed.signal.aborted) return;
    if (this.#socket.writableLength > MAX_PENDING_OUTPUT) {
      this.#socket.destroy();
      return;
    }
    this.#socket.write(line.endsWith('\n') ? line : `${line}\n`);
  }

  close(): void {
    if (!this.#socket.destroyed) this.#socket.end();
    // A peer that never reads must not keep the socket half-open.
    setTimeout(() => this.#socket.destroy(), 2000).unref();
    this.#onClose();
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let i;
    while ((i = this.#buffer.indexOf('\n')) >= 0) {
      this.#lines.push(this.#buffer.slice(0, i).replace(/\r$/, ''));
      this.#buffer = this.#buffer.slice(i + 1);
    }
    if (this.#buffer.length > this.#maxLine || this.#lines.some((l) => l.length > this.#maxLine)) {
      this.#socket.end('ERR 413 line-too-long\n');
      this.#socket.destroy();
      this.#onClose();
      return;
    }
    // Only a whole line wakes a reader; part of one waits for the rest.
    if (this.#lines.length > 0) this.#waiter?.();
  }

  #onClose(): void {
    if (!this.#closed.signal.aborted) this.#closed.abort();
    this.#waiter?.();
  }
}

/** Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d. */
function plainAddress(a: string | undefined): string {
  return (a ?? '').replace(/^::ffff:/, '');
}
