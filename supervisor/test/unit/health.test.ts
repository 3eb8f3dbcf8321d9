import t from 'tap';
import { afterFailure, afterSuccess, DEFAULT_HEALTH_POLICY, FRESH_HEALTH, verdict, withGoldenProblem, type HealthPolicy, type PoolHealth } from '../../src/domain/health.js';

const POLICY: HealthPolicy = { unhealthyAfter: 3, backoffBaseMs: 1_000, backoffMaxMs: 10_000 };
const NOW = 1_900_000_000_000;

function failures(n: number, policy = POLICY, start: PoolHealth = FRESH_HEALTH): PoolHealth {
  let h = start;
  for (let i = 1; i <= n; i++) h = afterFailure(h, `failure ${i}`, NOW, policy);
  return h;
}

t.test('a fresh pool is healthy and may clone at once', async (t) => {
  t.same(verdict(FRESH_HEALTH, POLICY), { healthy: true, reason: '' });
  t.equal(FRESH_HEALTH.cloneNotBefore, 0);
});

t.test('the backoff doubles with each failure and stops at the cap', async (t) => {
  const waits = [1, 2, 3, 4, 5, 6, 40].map((n) => failures(n).cloneNotBefore - NOW);
  t.same(waits, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
});

t.test('the backoff counts from the time of the failure', async (t) => {
  t.equal(afterFailure(FRESH_HEALTH, 'x', NOW + 123, POLICY).cloneNotBefore, NOW + 123 + 1_000);
});

t.test('the default policy starts at 2 s and caps at 5 min', async (t) => {
  t.equal(failures(1, DEFAULT_HEALTH_POLICY).cloneNotBefore - NOW, 2_000);
  t.equal(failures(30, DEFAULT_HEALTH_POLICY).cloneNotBefore - NOW, 300_000);
  t.equal(DEFAULT_HEALTH_POLICY.unhealthyAfter, 3);
});

t.test('a pool turns unhealthy at the Nth failure in a row, naming the count and the last failure', async (t) => {
  t.equal(verdict(failures(2), POLICY).healthy, true);
  const v = verdict(failures(3), POLICY);
  t.equal(v.healthy, false);
  t.match(v.reason, /^3 clones in a row failed/);
  t.match(v.reason, /failure 3/);
  t.notMatch(v.reason, /failure 2/);
  t.equal(verdict(failures(1, { ...POLICY, unhealthyAfter: 1 }), { ...POLICY, unhealthyAfter: 1 }).healthy, false);
});

t.test('a success resets failures, the backoff and the last failure', async (t) => {
  const h = afterSuccess(failures(5));
  t.same(h, FRESH_HEALTH);
  t.same(verdict(h, POLICY), { healthy: true, reason: '' });
  t.equal(afterFailure(h, 'again', NOW, POLICY).cloneNotBefore - NOW, 1_000, 'the next backoff starts from the base again');
});

t.test('a golden image problem makes the pool unhealthy and dominates the failure count', async (t) => {
  const problem = 'golden image /srv/g.qcow2 does not exist';
  t.same(verdict(withGoldenProblem(FRESH_HEALTH, problem), POLICY), { healthy: false, reason: problem });
  t.same(verdict(withGoldenProblem(failures(4), problem), POLICY), { healthy: false, reason: problem });
});

t.test('a success does not clear a golden image problem; clearing it does', async (t) => {
  const problem = 'golden image /srv/g.qcow2 is vmdk, not qcow2 or raw';
  t.equal(verdict(afterSuccess(withGoldenProblem(failures(1), problem)), POLICY).reason, problem);
  const cleared = withGoldenProblem(withGoldenProblem(failures(1), problem), undefined);
  t.notOk('goldenProblem' in cleared);
  t.equal(cleared.consecutiveFailures, 1, 'the failure count is kept');
  t.same(verdict(cleared, POLICY), { healthy: true, reason: '' });
});

t.test('health values are never mutated', async (t) => {
  const h = failures(2);
  const copy = { ...h };
  afterFailure(h, 'x', NOW, POLICY);
  afterSuccess(h);
  withGoldenProblem(h, 'p');
  t.same(h, copy);
});
