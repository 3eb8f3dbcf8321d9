// A station protocol v1 client for integration tests: a TCP connection to the
// signal port made from inside a station's network namespace, read and
// written line by line by the test.
import type { ChildProcess } from 'node:child_process';
import type { Station } from './station-lan.js';

/**
 * Runs in the station's netns under the test's own Node (nothing else to
 * install, and the same runtime everywhere): bridges stdin/stdout to the
 * socket, reports the socket's life on stderr, and exits once the socket is
 * closed, so the process's exit is the connection's end. Writes made before
 * the connect are queued by the socket: a hello sent at once arrives inside
 * the server's 100 ms v0 silence window however slowly the bridge starts.
 */
const BRIDGE = `
const net = require('node:net');
const [host, port] = process.argv.slice(-2);
const s = net.connect({ host, port: Number(port) });
s.setNoDelay(true);
s.on('connect', () => process.stderr.write('OPEN\\n'));
s.on('error', (e) => process.stderr.write('ERROR ' + (e.code || e.message) + '\\n'));
s.on('close', () => { process.stderr.write('CLOSED\\n'); process.exit(0); });
s.pipe(process.stdout);
process.stdin.pipe(s);
`;

export interface V1Client {
  /** Every line received so far, in order. */
  readonly lines: readonly string[];
  send(line: string): void;
  /**
   * The next received line matching `pattern`, after the last line an earlier
   * `next` returned. Rejects on timeout, or at once when the connection has
   * closed without such a line; the message carries what was received.
   */
  next(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the connection is gone (closed by the server, or by close/kill). */
  readonly closed: Promise<void>;
  isClosed(): boolean;
  /** Closes the station's side (FIN); kills the bridge if it is not gone within `graceMs`. */
  close(graceMs?: number): Promise<void>;
  /** The kiosk vanishes: the bridge is killed, the kernel closes the socket. */
  kill(): Promise<void>;
}

export interface V1ClientOptions {
  /** Default 169.254.24.1. */
  readonly host?: string;
  /** Default 5905 (the signal port). */
  readonly port?: number;
  /** Sent at once, before the connection is even open (see BRIDGE). */
  readonly first?: string;
  /**
   * Answer the server's PING with PONG, as a station must: the server takes a
   * station silent for 45 s for gone. Default true.
   */
  readonly answerPings?: boolean;
  /** Bound on opening the connection. Default 5000 ms. */
  readonly openTimeoutMs?: number;
}

/** Connects from `station` to the signal port; resolves once the TCP connection is open. */
export async function connectV1(station: Station, o: V1ClientOptions = {}): Promise<V1Client> {
  const child: ChildProcess = station.spawn([process.execPath, '-e', BRIDGE, o.host ?? '169.254.24.1', String(o.port ?? 5905)]);
  const lines: string[] = [];
  const diag: string[] = [];
  let cursor = 0;
  let gone = false;
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };

  // A write racing the bridge's exit must not take the test process down with EPIPE.
  child.stdin?.on('error', (e) => diag.push(`stdin: ${String(e)}`));
  let buf = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      lines.push(line);
      buf = buf.slice(i + 1);
      if (line === 'PING' && o.answerPings !== false && !gone) child.stdin?.write('PONG\n');
    }
    notify();
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    diag.push(d);
    notify();
  });
  const closed = new Promise<void>((resolve) => {
    const done = (): void => {
      if (gone) return;
      // A last line without its newline still counts: the server may close right after it.
      if (buf.length > 0) lines.push(buf);
      buf = '';
      gone = true;
      resolve();
      notify();
    };
    // 'close', not 'exit': by then stdout has been read to its end.
    child.on('close', done);
    child.on('error', (e) => {
      diag.push(String(e));
      done();
    });
  });

  const received = (): string => `received: ${JSON.stringify(lines)}${diag.length ? `; bridge: ${diag.join('').trim().replace(/\n/g, ' | ')}` : ''}`;

  function send(line: string): void {
    if (gone) throw new Error(`send(${JSON.stringify(line)}) on a closed connection; ${received()}`);
    child.stdin?.write(line + '\n');
  }

  function next(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        for (let i = cursor; i < lines.length; i++) {
          pattern.lastIndex = 0;
          if (pattern.test(lines[i] as string)) {
            cursor = i + 1;
            finish();
            resolve(lines[i] as string);
            return;
          }
        }
        if (gone) {
          finish();
          reject(new Error(`connection closed without a line matching ${pattern}; ${received()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; ${received()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }

  async function kill(): Promise<void> {
    if (!gone) child.kill('SIGKILL');
    await closed;
  }

  async function close(graceMs = 3_000): Promise<void> {
    if (gone) return;
    child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await closed;
    clearTimeout(timer);
  }

  // Open, or failed to open, within the bound; never leaves a bridge behind.
  const openMs = o.openTimeoutMs ?? 5_000;
  if (o.first !== undefined) send(o.first);
  const opened = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      resolve(false);
    }, openMs);
    const check = (): void => {
      const text = diag.join('');
      if (text.includes('OPEN') || text.includes('ERROR') || gone) {
        clearTimeout(timer);
        waiters.delete(check);
        resolve(text.includes('OPEN'));
      }
    };
    waiters.add(check);
    check();
  });
  if (!opened) {
    await kill();
    throw new Error(`could not connect from ${station.netns} to ${o.host ?? '169.254.24.1'}:${o.port ?? 5905} within ${openMs} ms; ${received()}`);
  }

  return {
    lines,
    send,
    next,
    closed,
    isClosed: () => gone,
    close,
    kill,
  };
}

/** The `key=value` fields of a protocol line (the word itself is left out). */
export function fields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of line.trim().split(' ').slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}
