import { connect, type Socket } from 'node:net';
import { asStationError, StationError } from '../domain/errors.js';
import type { ServerConnection, ServerLink } from '../ports/server-link.js';

/** A server line is at most 1024 bytes; anything much longer is not our server. */
const MAX_LINE = 4096;

export class TcpServerLink implements ServerLink {
  /** `target` throws (`server-unknown`) while no server is known: the attempt fails like an unreachable one. */
  constructor(private readonly target: () => { host: string; port: number }) {}

  connect(timeoutMs: number): Promise<ServerConnection> {
    let host: string, port: number;
    try {
      ({ host, port } = this.target());
    } catch (e) {
      return Promise.reject(asStationError(e, 'server-unknown'));
    }
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new StationError('server-unreachable', `${host}:${port}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new StationError('server-unreachable', `${host}:${port}: ${e.code ?? e.message}`, { cause: e }));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new TcpServerConnection(socket));
      });
    });
  }
}

class TcpServerConnection implements ServerConnection {
  readonly closed: Promise<void>;
  #lines: string[] = [];
  #buf = '';
  #gone = false;
  #waiters: (() => void)[] = [];

  constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    // A silent peer is found by the protocol's PING, but a dead link also by the kernel.
    socket.setKeepAlive(true, 10_000);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.#buf += d;
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        this.#lines.push(this.#buf.slice(0, i).replace(/\r$/, ''));
        this.#buf = this.#buf.slice(i + 1);
      }
      if (this.#buf.length > MAX_LINE) socket.destroy();
      this.#wake();
    });
    socket.on('error', () => socket.destroy());
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#gone = true;
        this.#wake();
        resolve();
      }),
    );
  }

  send(line: string): void {
    if (!this.#gone && !this.socket.destroyed) this.socket.write(line + '\n');
  }

  async next(timeoutMs?: number): Promise<string | 'closed' | 'timeout'> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      if (this.#gone) return 'closed';
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const timer = left === undefined ? undefined : setTimeout(done, left);
        const waiters = this.#waiters;
        function done(): void {
          clearTimeout(timer);
          const i = waiters.indexOf(done);
          if (i >= 0) waiters.splice(i, 1);
          resolve();
        }
        waiters.push(done);
      });
    }
  }

  close(): void {
    this.socket.end();
    // A peer that does not finish its side within a moment is cut off.
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
