import type { Clock } from '../../../ports/clock.js';
import type { NewSecret } from '../../../ports/secrets.js';

/** A logged-in browser. */
export interface LoginSession {
  readonly id: string;
  /** Sent back in a header on every POST: a page on another site never learns it. */
  readonly csrf: string;
  readonly address: string;
  readonly createdAt: number;
  lastSeen: number;
}

export interface LoginSessionLimits {
  /** A login ends after this long without a request. */
  readonly idleMs: number;
  /** …and this long after it began, however busy. */
  readonly maxAgeMs: number;
  /** Logins kept at once; the oldest goes first. */
  readonly max: number;
}

export const DEFAULT_MAX_AGE_MS = 12 * 3_600_000;

/**
 * The logins, in memory only: a restarted supervisor asks everyone to log in
 * again, which is also the way to throw every login out.
 */
export class LoginSessions {
  readonly #clock: Clock;
  readonly #newSecret: NewSecret;
  readonly #limits: LoginSessionLimits;
  readonly #byId = new Map<string, LoginSession>();

  constructor(clock: Clock, newSecret: NewSecret, limits: Partial<LoginSessionLimits> & { idleMs: number }) {
    this.#clock = clock;
    this.#newSecret = newSecret;
    this.#limits = { maxAgeMs: DEFAULT_MAX_AGE_MS, max: 64, ...limits };
  }

  get maxAgeMs(): number {
    return this.#limits.maxAgeMs;
  }

  create(address: string): LoginSession {
    const now = this.#clock.now();
    this.#prune(now);
    while (this.#byId.size >= this.#limits.max) this.#byId.delete(this.#byId.keys().next().value as string);
    const session: LoginSession = { id: this.#newSecret() + this.#newSecret(), csrf: this.#newSecret(), address, createdAt: now, lastSeen: now };
    this.#byId.set(session.id, session);
    return session;
  }

  /** The live session with this id, its idle time restarted; undefined when unknown or expired. */
  use(id: string | undefined): LoginSession | undefined {
    const s = this.peek(id);
    if (s !== undefined) s.lastSeen = this.#clock.now();
    return s;
  }

  /** The same, without counting as activity (an open event stream is not someone at the keyboard). */
  peek(id: string | undefined): LoginSession | undefined {
    if (id === undefined) return undefined;
    const s = this.#byId.get(id);
    if (s === undefined) return undefined;
    if (this.#expired(s, this.#clock.now())) {
      this.#byId.delete(id);
      return undefined;
    }
    return s;
  }

  end(id: string): void {
    this.#byId.delete(id);
  }

  /** Ends every login but `keep` (after the password changed). */
  endOthers(keep: string): void {
    for (const id of [...this.#byId.keys()]) if (id !== keep) this.#byId.delete(id);
  }

  #expired(s: LoginSession, now: number): boolean {
    return now - s.lastSeen >= this.#limits.idleMs || now - s.createdAt >= this.#limits.maxAgeMs;
  }

  #prune(now: number): void {
    for (const [id, s] of this.#byId) if (this.#expired(s, now)) this.#byId.delete(id);
  }
}

/**
 * Whether two strings are equal, in a time that depends on their lengths
 * only, not on where they first differ (CSRF tokens).
 */
export function sameSecret(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i % Math.max(1, b.length));
  return diff === 0;
}
