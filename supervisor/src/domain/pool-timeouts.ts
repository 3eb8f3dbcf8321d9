import { TabulaError } from './errors.js';

/** A pool's timeouts, by their key in the config file; all in seconds. */
export const TIMEOUT_KEYS = ['idle_timeout', 'max_session', 'session_warning', 'boot_timeout'] as const;

export type TimeoutKey = (typeof TIMEOUT_KEYS)[number];

/** Seconds, per key. */
export type PoolTimeouts = Readonly<Record<TimeoutKey, number>>;

export interface TimeoutBounds {
  readonly min: number;
  /** The value must be above min, not equal to it. */
  readonly aboveMin?: boolean;
  readonly max: number;
  /** What 0 means, when it is allowed. */
  readonly zero?: string;
}

/**
 * What each timeout may be: the config file's schema and staff's changes
 * (D-Bus, tabulactl, the admin page) are held to the same bounds. There is no
 * rule between them: a warning longer than a limit warns at once, as in the file.
 */
export const TIMEOUT_BOUNDS: Readonly<Record<TimeoutKey, TimeoutBounds>> = {
  idle_timeout: { min: 0, max: 86_400, zero: 'never' },
  max_session: { min: 0, max: 7 * 86_400, zero: 'no limit' },
  session_warning: { min: 0, max: 3_600, zero: 'no warning' },
  boot_timeout: { min: 0, aboveMin: true, max: 86_400 },
};

/** The bounds for people: "from 0 to 86400 seconds (0: never)". */
export function describeBounds(b: TimeoutBounds): string {
  const range = b.aboveMin ? `more than ${b.min} and at most ${b.max} seconds` : `from ${b.min} to ${b.max} seconds`;
  return b.zero === undefined ? range : `${range} (0: ${b.zero})`;
}

/** Why `value` cannot be `key`, naming the key and its bounds; undefined when it can. */
export function timeoutProblem(key: TimeoutKey, value: unknown): string | undefined {
  const b = TIMEOUT_BOUNDS[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) return `${key} must be a number of seconds, ${describeBounds(b)}`;
  if ((b.aboveMin ? value <= b.min : value < b.min) || value > b.max) return `${key} must be ${describeBounds(b)}, not ${value}`;
  return undefined;
}

export function isTimeoutKey(key: string): key is TimeoutKey {
  return (TIMEOUT_KEYS as readonly string[]).includes(key);
}

/**
 * Staff's changes to some of a pool's timeouts, checked: at least one, each a
 * known key within its bounds. Throws invalid-argument naming every problem.
 */
export function checkTimeouts(changes: Readonly<Record<string, unknown>>): Partial<PoolTimeouts> {
  const keys = Object.keys(changes);
  if (keys.length === 0) throw new TabulaError('invalid-argument', `no timeout given: set one or more of ${TIMEOUT_KEYS.join(', ')}`);
  const problems = keys.map((k) => (isTimeoutKey(k) ? timeoutProblem(k, changes[k]) : `unknown timeout "${k}": expected ${TIMEOUT_KEYS.join(', ')}`)).filter((p) => p !== undefined);
  if (problems.length > 0) throw new TabulaError('invalid-argument', problems.join('; '));
  return changes as Partial<PoolTimeouts>;
}
