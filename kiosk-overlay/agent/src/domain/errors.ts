/**
 * The station agent's one error type. `code` is what callers branch on; the
 * message names what is wrong for the person reading the journal.
 */
export type StationErrorCode =
  | 'config-invalid'
  | 'config-unreadable'
  | 'server-unknown'
  | 'server-unreachable'
  | 'server-refused'
  | 'viewer-failed'
  | 'cleanup-failed'
  | 'firewall-failed'
  | 'internal';

export class StationError extends Error {
  readonly code: StationErrorCode;

  constructor(code: StationErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StationError';
    this.code = code;
  }
}

/** Wraps anything thrown by foreign code so handlers only ever see StationError. */
export function asStationError(e: unknown, fallback: StationErrorCode = 'internal'): StationError {
  if (e instanceof StationError) return e;
  return new StationError(fallback, e instanceof Error ? e.message : String(e), { cause: e });
}
