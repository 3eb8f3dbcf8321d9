/** One TCP connection to the server's signal port, read line by line. */
export interface ServerConnection {
  send(line: string): void;
  /**
   * The next line from the server, 'closed' once the connection is gone, or
   * 'timeout' after `timeoutMs`. Lines are queued: none is lost between calls.
   */
  next(timeoutMs?: number): Promise<string | 'closed' | 'timeout'>;
  close(): void;
  readonly closed: Promise<void>;
}

export interface ServerLink {
  /** Rejects with `server-unreachable` (refused, no route, timed out). */
  connect(timeoutMs: number): Promise<ServerConnection>;
}
