import type { SessionRecord } from './vm.js';

/** A pool's limits on a visitor's session; 0 switches a limit off. */
export interface SessionLimits {
  /** No keyboard or mouse input reported for this long ends a v1 session. */
  readonly idleTimeoutMs: number;
  /** No session lasts longer than this from its connection (the backstop for v0, which reports nothing). */
  readonly maxSessionMs: number;
  /** How long before a limit ends the session the station is warned (the kiosk shows a countdown). */
  readonly warnBeforeMs: number;
}

export type LimitReason = 'idle' | 'time-limit';

export interface SessionDeadline {
  readonly at: number;
  readonly reason: LimitReason;
}

/**
 * When a connected session will be ended by its limits if nothing changes,
 * or undefined when none applies. Idle counts from the last input reported,
 * never from before the connection; a station that reports nothing (v0) is
 * never judged idle, only by the time limit.
 */
export function sessionDeadline(session: SessionRecord, limits: SessionLimits, lastInputAt: number | undefined): SessionDeadline | undefined {
  const connectedAt = session.connectedAt;
  if (connectedAt === undefined) return undefined;
  const candidates: SessionDeadline[] = [];
  if (limits.idleTimeoutMs > 0 && session.protocol === 'v1') {
    candidates.push({ at: Math.max(connectedAt, lastInputAt ?? connectedAt) + limits.idleTimeoutMs, reason: 'idle' });
  }
  if (limits.maxSessionMs > 0) candidates.push({ at: connectedAt + limits.maxSessionMs, reason: 'time-limit' });
  return candidates.reduce<SessionDeadline | undefined>((a, b) => (a === undefined || b.at < a.at ? b : a), undefined);
}

/** When the station should be warned of `deadline`. */
export function warnAt(deadline: SessionDeadline, limits: SessionLimits): number {
  return deadline.at - limits.warnBeforeMs;
}
