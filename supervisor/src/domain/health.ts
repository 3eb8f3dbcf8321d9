/**
 * Clone failures per pool, with exponential backoff. Kept in memory only: after
 * a restart a pool simply gets a fresh set of tries, which is what a person
 * fixing the cause would want.
 */
export interface HealthPolicy {
  readonly unhealthyAfter: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = { unhealthyAfter: 3, backoffBaseMs: 2_000, backoffMaxMs: 300_000 };

export interface PoolHealth {
  readonly consecutiveFailures: number;
  readonly lastFailure?: string;
  readonly cloneNotBefore: number;
  /** Set while the golden image cannot be used; no clone is attempted. */
  readonly goldenProblem?: string;
  /** Set when the pool went back to its previous golden image by itself, until a clone of it comes up. */
  readonly rolledBack?: string;
}

export const FRESH_HEALTH: PoolHealth = { consecutiveFailures: 0, cloneNotBefore: 0 };

export function afterFailure(h: PoolHealth, reason: string, now: number, policy: HealthPolicy): PoolHealth {
  const n = h.consecutiveFailures + 1;
  const backoff = Math.min(policy.backoffBaseMs * 2 ** (n - 1), policy.backoffMaxMs);
  return { ...h, consecutiveFailures: n, lastFailure: reason, cloneNotBefore: now + backoff };
}

export function afterSuccess(h: PoolHealth): PoolHealth {
  const { lastFailure: _l, rolledBack: _r, ...rest } = h;
  return { ...rest, consecutiveFailures: 0, cloneNotBefore: 0 };
}

export function withGoldenProblem(h: PoolHealth, problem: string | undefined): PoolHealth {
  const { goldenProblem: _g, ...rest } = h;
  return problem === undefined ? rest : { ...rest, goldenProblem: problem };
}

export interface HealthVerdict {
  readonly healthy: boolean;
  readonly reason: string;
}

export function verdict(h: PoolHealth, policy: HealthPolicy): HealthVerdict {
  if (h.goldenProblem !== undefined) return { healthy: false, reason: h.goldenProblem };
  if (h.rolledBack !== undefined) return { healthy: false, reason: h.rolledBack };
  if (h.consecutiveFailures >= policy.unhealthyAfter) {
    return { healthy: false, reason: `${h.consecutiveFailures} clones in a row failed to come up (last: ${h.lastFailure ?? 'unknown'})` };
  }
  return { healthy: true, reason: '' };
}
