import type { Disposable } from './disposable.js';

/** One station's connection to the signal port, line by line. */
export interface StationConnection {
  /** The station's IPv4 address. */
  readonly remoteAddress: string;
  /** Aborts when the connection is gone (either side). */
  readonly closed: AbortSignal;
  /** The next line without its newline; 'timeout' when none came in time; 'closed' at the end. */
  nextLine(timeoutMs: number): Promise<string | 'timeout' | 'closed'>;
  /** Bytes received that do not yet make a whole line. */
  readonly pendingBytes: number;
  write(line: string): void;
  close(): void;
}

export interface StationListenerLimits {
  /** Longer lines close the connection. */
  readonly maxLineBytes: number;
  /** Connections beyond this are refused at once. */
  readonly maxConnections: number;
  /** Per station address, so one station cannot take every slot. */
  readonly maxPerStation: number;
}

/** The signal port: accepts stations and hands each connection to `handle`. */
export interface StationListener {
  listen(address: string, port: number, limits: StationListenerLimits, handle: (c: StationConnection) => Promise<void>): Promise<Disposable>;
}
