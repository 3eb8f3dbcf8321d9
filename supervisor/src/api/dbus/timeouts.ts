import dbus from 'dbus-next';
import { TabulaError } from '../../domain/errors.js';
import { TIMEOUT_KEYS, type PoolTimeouts, type TimeoutKey } from '../../domain/pool-timeouts.js';

/** A pool's timeouts on D-Bus: one property each (seconds, a double), and the same names as SetTimeouts' keys. */
const NAMES: Readonly<Record<TimeoutKey, string>> = { idle_timeout: 'IdleTimeout', max_session: 'MaxSession', session_warning: 'SessionWarning', boot_timeout: 'BootTimeout' };

export const TIMEOUT_PROPS: Readonly<Record<string, string>> = Object.fromEntries(TIMEOUT_KEYS.map((k) => [NAMES[k], 'd']));

/** The Pool properties for the timeouts in force. */
export function timeoutProps(t: PoolTimeouts | undefined): Record<string, number> {
  return Object.fromEntries(TIMEOUT_KEYS.map((k) => [NAMES[k], t?.[k] ?? 0]));
}

/** The timeouts from a Pool's properties (unwrapped); undefined from a supervisor that has none. */
export function timeoutsOfProps(props: Readonly<Record<string, unknown>>): PoolTimeouts | undefined {
  if (TIMEOUT_KEYS.some((k) => typeof props[NAMES[k]] !== 'number')) return undefined;
  return Object.fromEntries(TIMEOUT_KEYS.map((k) => [k, props[NAMES[k]] as number])) as PoolTimeouts;
}

/** SetTimeouts' argument, for a client. */
export function timeoutsDict(changes: Partial<PoolTimeouts>): Record<string, dbus.Variant> {
  return Object.fromEntries(Object.entries(changes).map(([k, v]) => [NAMES[k as TimeoutKey], new dbus.Variant('d', v)]));
}

/** Variant signatures that carry a number. */
const NUMERIC = new Set(['y', 'n', 'q', 'i', 'u', 'x', 't', 'd']);

/**
 * SetTimeouts' a{sv} → seconds by config key. Any numeric type is taken
 * (`busctl … a{sv} 1 IdleTimeout u 600`); the bounds are PoolAdmin's to check.
 */
export function timeoutsOfDict(dict: Record<string, dbus.Variant>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(dict)) {
    const key = TIMEOUT_KEYS.find((k) => NAMES[k] === name);
    if (key === undefined) throw new TabulaError('invalid-argument', `unknown key "${name}": expected ${TIMEOUT_KEYS.map((k) => NAMES[k]).join(', ')}`);
    if (!NUMERIC.has(v.signature)) throw new TabulaError('invalid-argument', `${name} (${key}) must be a number of seconds, not of type "${v.signature}"`);
    out[key] = Number(v.value);
  }
  return out;
}
