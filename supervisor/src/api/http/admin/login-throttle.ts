import type { Clock } from '../../../ports/clock.js';

export interface ThrottlePolicy {
  /** Wrong passwords in a row an address may give before it must wait. */
  readonly freeFailures: number;
  /** The first wait; each further failure doubles it… */
  readonly firstLockMs: number;
  /** …up to this. */
  readonly maxLockMs: number;
  /** A count this old without news is forgotten. */
  readonly forgetMs: number;
  /** Addresses tracked at once (the oldest news is dropped first). */
  readonly maxTracked: number;
}

export const DEFAULT_THROTTLE: ThrottlePolicy = { freeFailures: 5, firstLockMs: 30_000, maxLockMs: 15 * 60_000, forgetMs: 24 * 3_600_000, maxTracked: 1024 };

interface Record {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
}

/**
 * Slows password guessing down per client: a few tries are free, then each
 * wrong password locks that client out for twice as long as the last time.
 * IPv6 clients are counted per /64, since one host can have many addresses.
 */
export class LoginThrottle {
  readonly #clock: Clock;
  readonly #policy: ThrottlePolicy;
  readonly #records = new Map<string, Record>();

  constructor(clock: Clock, policy: Partial<ThrottlePolicy> = {}) {
    this.#clock = clock;
    this.#policy = { ...DEFAULT_THROTTLE, ...policy };
  }

  /** How long `address` must still wait before its next try (0: it may try now). */
  waitMs(address: string): number {
    const r = this.#records.get(throttleKey(address));
    return r === undefined ? 0 : Math.max(0, r.lockedUntil - this.#clock.now());
  }

  failed(address: string): void {
    const now = this.#clock.now();
    const key = throttleKey(address);
    const p = this.#policy;
    let r = this.#records.get(key);
    if (r === undefined || now - r.lastFailure >= p.forgetMs) r = { failures: 0, lastFailure: now, lockedUntil: 0 };
    this.#records.delete(key);
    r.failures++;
    r.lastFailure = now;
    const over = r.failures - p.freeFailures;
    if (over > 0) r.lockedUntil = now + Math.min(p.maxLockMs, p.firstLockMs * 2 ** Math.min(over - 1, 30));
    // Re-inserted, so the Map's order is the order of news: the first key is the stalest.
    this.#records.set(key, r);
    while (this.#records.size > p.maxTracked) this.#records.delete(this.#records.keys().next().value as string);
  }

  succeeded(address: string): void {
    this.#records.delete(throttleKey(address));
  }
}

/** IPv4 (also IPv4-mapped IPv6) as is; other IPv6 by its /64. */
export function throttleKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
