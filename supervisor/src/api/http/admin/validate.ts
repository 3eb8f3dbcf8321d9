import { TabulaError } from '../../../domain/errors.js';
import { isTimeoutKey, TIMEOUT_KEYS, timeoutProblem, type PoolTimeouts } from '../../../domain/pool-timeouts.js';
import type { SessionLogEntry } from '../../../domain/session-log.js';

// What each request must carry, checked before anything is called: every
// refusal names the field and what is wrong with it.

export type Body = Readonly<Record<string, unknown>>;

const bad = (message: string) => new TabulaError('invalid-argument', message);

/** The request body as a JSON object ({} when empty). */
export function objectBody(text: string): Body {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad('the request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('the request body must be a JSON object');
  return value as Body;
}

export function text(body: Body, key: string, max = 256): string {
  const v = body[key];
  if (typeof v !== 'string') throw bad(`"${key}" is missing or not a string`);
  if (v.length > max) throw bad(`"${key}" is too long (at most ${max} characters)`);
  return v;
}

/** A string that must not be empty once trimmed; returned trimmed. */
export function filled(body: Body, key: string, max = 256): string {
  const v = text(body, key, max).trim();
  if (v === '') throw bad(`"${key}" is empty`);
  return v;
}

export function flag(body: Body, key: string): boolean {
  const v = body[key];
  if (typeof v !== 'boolean') throw bad(`"${key}" must be true or false`);
  return v;
}

export function wholeNumber(body: Body, key: string, min: number, max: number): number {
  const v = body[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(`"${key}" must be a whole number`);
  if (v < min || v > max) throw bad(`"${key}" must be between ${min} and ${max}, not ${v}`);
  return v;
}

const POOL_NAME = /^[a-z][a-z0-9-]{0,23}$/;

export function poolName(body: Body, key = 'pool'): string {
  const v = text(body, key, 64);
  if (!POOL_NAME.test(v)) throw bad(`"${key}": ${JSON.stringify(v)} is not a pool name`);
  return v;
}

/**
 * The timeouts a request sets (seconds, by their config keys; those left out
 * or null stay as they are): at least one, each within its bounds, the first
 * problem named by its key so the page can show it next to the field.
 */
export function timeouts(body: Body): Partial<PoolTimeouts> {
  const given = Object.entries(body).filter(([k, v]) => isTimeoutKey(k) && v !== null && v !== undefined);
  if (given.length === 0) throw bad(`no timeout given: set one or more of ${TIMEOUT_KEYS.join(', ')}`);
  for (const [k, v] of given) {
    const problem = isTimeoutKey(k) ? timeoutProblem(k, v) : undefined;
    if (problem !== undefined) throw bad(problem);
  }
  return Object.fromEntries(given) as Partial<PoolTimeouts>;
}

/** What the sessions page asks of the session log. */
export interface SessionFilter {
  /** Ended at or after (ms since the epoch). */
  readonly since: number;
  readonly pool?: string;
  /** Part of the station's address or name. */
  readonly station?: string;
  readonly reason?: string;
}

/** The history's default window: the last day. */
export const DEFAULT_SINCE_MS = 24 * 3_600_000;

/** `?since=MS&pool=&station=&reason=`; empty fields are no filter. */
export function sessionFilter(query: URLSearchParams, now: number): SessionFilter {
  const get = (k: string) => (query.get(k) ?? '').trim();
  const since = get('since');
  if (since !== '' && !/^\d{1,15}$/.test(since)) throw bad(`since: ${JSON.stringify(since.slice(0, 32))} is not a time (milliseconds since 1970)`);
  const pool = get('pool');
  if (pool !== '' && !POOL_NAME.test(pool)) throw bad(`pool: ${JSON.stringify(pool.slice(0, 32))} is not a pool name`);
  const station = get('station');
  if (station.length > 64) throw bad('station: at most 64 characters');
  const reason = get('reason');
  if (reason !== '' && !/^[a-z][a-z-]{0,31}$/.test(reason)) throw bad(`reason: ${JSON.stringify(reason.slice(0, 32))} is not a reason (such as idle, admin, station)`);
  return {
    since: since === '' ? now - DEFAULT_SINCE_MS : Number(since),
    ...(pool ? { pool } : {}),
    ...(station ? { station } : {}),
    ...(reason ? { reason } : {}),
  };
}

export function matches(e: SessionLogEntry, f: SessionFilter): boolean {
  if (e.endedAt < f.since) return false;
  if (f.pool !== undefined && e.pool !== f.pool) return false;
  if (f.reason !== undefined && e.reason !== f.reason) return false;
  if (f.station !== undefined) {
    const needle = f.station.toLowerCase();
    if (![e.station.address, e.station.name ?? '', e.station.mac ?? ''].some((s) => s.toLowerCase().includes(needle))) return false;
  }
  return true;
}
