/**
 * The one error type of Tabula. `code` is what callers branch on and what the
 * edges (D-Bus, CLI exit codes, logs) translate; `message` is for people.
 */
export type ErrorCode =
  | 'config-invalid'
  | 'config-unreadable'
  | 'golden-image-missing'
  | 'golden-image-invalid'
  | 'libvirt-unavailable'
  | 'libvirt-failed'
  | 'disk-failed'
  | 'disk-full'
  | 'firewall-failed'
  | 'timeout'
  | 'not-found'
  | 'invalid-argument'
  | 'bus-name-taken'
  | 'bus-unavailable'
  | 'conflict'
  | 'ticket-required'
  | 'session-under-way'
  | 'pool-drained'
  | 'access-denied'
  | 'command-failed'
  | 'internal';

export class TabulaError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TabulaError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

export function isTabulaError(e: unknown): e is TabulaError {
  return e instanceof TabulaError;
}

/** Wraps anything thrown by foreign code so handlers only ever see TabulaError. */
export function asTabulaError(e: unknown, fallback: ErrorCode = 'internal'): TabulaError {
  if (e instanceof TabulaError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new TabulaError(fallback, message, { cause: e });
}
