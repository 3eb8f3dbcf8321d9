import t from 'tap';
import { sessionDeadline, warnAt } from '../../src/domain/session-limits.js';
import { endedSession, type SessionRecord, type VmRecord } from '../../src/domain/vm.js';

const T = 1_900_000_000_000;
const limits = { idleTimeoutMs: 300_000, maxSessionMs: 3_600_000, warnBeforeMs: 60_000 };
const v1: SessionRecord = { id: 's', station: '169.254.24.10', protocol: 'v1', handedAt: T - 2_000, connectedAt: T };

t.test('the earliest limit wins; input never reaches back before the connection', async (t) => {
  t.same(sessionDeadline(v1, limits, undefined), { at: T + 300_000, reason: 'idle' });
  t.same(sessionDeadline(v1, limits, T - 999_999), { at: T + 300_000, reason: 'idle' }, 'input before the connection counts as the connection');
  t.same(sessionDeadline(v1, limits, T + 3_500_000), { at: T + 3_600_000, reason: 'time-limit' });
  t.same(sessionDeadline({ ...v1, protocol: 'v0' }, limits, T + 5), { at: T + 3_600_000, reason: 'time-limit' }, 'v0: no idle judgement');
  t.equal(sessionDeadline({ ...v1, connectedAt: undefined } as SessionRecord, limits, undefined), undefined, 'not connected: the hand-off rules apply');
  t.equal(warnAt({ at: T + 300_000, reason: 'idle' }, limits), T + 240_000);
});

t.test('an ended session keeps its first end: a later path cannot rewrite why', async (t) => {
  const r: VmRecord = { pool: 'p', slot: 0, state: 'in-use', createdAt: T - 9_000, stateSince: T, session: v1 };
  const ended = endedSession(r, T + 10, 'idle');
  t.match(ended, { state: 'dirty', stateSince: T + 10, session: { endedAt: T + 10, endReason: 'idle' } });
  t.match(endedSession(ended, T + 20, 'admin'), { session: { endedAt: T + 10, endReason: 'idle' } });
});
