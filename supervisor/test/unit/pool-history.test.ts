import t from 'tap';
import { Metrics } from '../../src/app/metrics.js';
import { MINUTE_MS, PoolHistory } from '../../src/app/pool-history.js';
import type { SupervisorStatus } from '../../src/app/reconciler.js';
import { RingBuffer } from '../../src/app/ring-buffer.js';
import { SupervisorMetrics } from '../../src/app/supervisor-metrics.js';
import { emptyCounts } from '../../src/domain/status.js';
import { FakeClock } from '../fakes/fake-clock.js';

/** A status with one pool per [name, clean, size]. */
function status(...pools: Array<[string, number, number]>): SupervisorStatus {
  return {
    state: 'ready',
    reason: '',
    line: '',
    pools: pools.map(([name, clean, size]) => ({ name, size, counts: { ...emptyCounts(), clean }, healthy: true, healthReason: '', drained: false, vms: [] })),
  };
}

t.test('a ring buffer keeps the last values, oldest first', async (t) => {
  const r = new RingBuffer<number>(3);
  t.same(r.toArray(), []);
  t.equal(r.last(), undefined);
  for (const v of [1, 2]) r.push(v);
  t.same(r.toArray(), [1, 2]);
  for (const v of [3, 4, 5]) r.push(v);
  t.same(r.toArray(), [3, 4, 5], 'the two oldest are gone');
  t.equal(r.last(), 5);
  t.equal(r.size, 3);
  t.throws(() => new RingBuffer(0), RangeError);
});

t.test('a minute holds the fewest clean VMs seen in it, and the pool size', async (t) => {
  const clock = new FakeClock(Date.UTC(2030, 0, 1, 10, 0, 0));
  const h = new PoolHistory(clock);
  h.observe(status(['desk', 3, 3]));
  clock.advance(10_000);
  h.observe(status(['desk', 1, 3]));
  clock.advance(10_000);
  h.observe(status(['desk', 2, 3]));
  const [desk] = h.snapshot().pools;
  t.equal(desk?.name, 'desk');
  t.same(desk?.samples, [{ at: Date.UTC(2030, 0, 1, 10, 0), clean: 1, size: 3, handoffs: 0, waitMeanMs: null, waitMaxMs: null }]);
});

t.test('quiet minutes are filled in with the depth as it stood', async (t) => {
  const t0 = Date.UTC(2030, 0, 1, 10, 0, 30);
  const clock = new FakeClock(t0);
  const h = new PoolHistory(clock);
  h.observe(status(['desk', 1, 2]));
  clock.advance(10_000);
  h.observe(status(['desk', 2, 2]));
  clock.advance(3 * MINUTE_MS);
  const samples = h.snapshot().pools[0]?.samples ?? [];
  t.same(
    samples.map((s) => [s.at - Date.UTC(2030, 0, 1, 10, 0), s.clean]),
    [
      [0, 1],
      [MINUTE_MS, 2],
      [2 * MINUTE_MS, 2],
      [3 * MINUTE_MS, 2],
    ],
    'minute 0 dipped to 1; the three quiet minutes after it had 2',
  );
});

t.test('hand-offs: count, mean and longest wait per minute', async (t) => {
  const clock = new FakeClock(Date.UTC(2030, 0, 1, 10, 0, 0));
  const h = new PoolHistory(clock);
  h.observe(status(['desk', 2, 2], ['lab', 1, 1]));
  h.handedOut('desk', 100);
  h.handedOut('desk', 500);
  clock.advance(MINUTE_MS);
  h.handedOut('desk', 40);
  h.handedOut('nowhere', 1000);
  const [desk, lab] = h.snapshot().pools;
  t.match(desk?.samples, [
    { handoffs: 2, waitMeanMs: 300, waitMaxMs: 500 },
    { handoffs: 1, waitMeanMs: 40, waitMaxMs: 40 },
  ]);
  t.match(lab?.samples, [{ handoffs: 0 }, { handoffs: 0 }], 'another pool is not touched');
  t.equal(h.snapshot().pools.length, 2, 'a hand-off of an unknown pool makes no pool');
});

t.test('only the last `minutes` are kept, however long the gap', async (t) => {
  const clock = new FakeClock(Date.UTC(2030, 0, 1, 0, 0, 0));
  const h = new PoolHistory(clock, 5);
  h.observe(status(['desk', 1, 1]));
  clock.advance(7 * MINUTE_MS);
  h.observe(status(['desk', 0, 1]));
  const samples = h.snapshot().pools[0]?.samples ?? [];
  t.equal(samples.length, 5);
  t.equal(samples.at(-1)?.at, Date.UTC(2030, 0, 1, 0, 7), 'ends at the current minute');
  t.equal(samples[0]?.at, Date.UTC(2030, 0, 1, 0, 3), 'starts 4 minutes before it');
  t.equal(samples.at(-1)?.clean, 0);
  clock.advance(1000 * MINUTE_MS);
  t.equal(h.snapshot().pools[0]?.samples.length, 5, 'a month-long silence still costs 5 minutes');
});

t.test('a pool no longer configured is forgotten; a new one starts empty', async (t) => {
  const clock = new FakeClock();
  const h = new PoolHistory(clock);
  h.observe(status(['desk', 1, 1]));
  h.observe(status(['lab', 2, 2]));
  t.same(
    h.snapshot().pools.map((p) => p.name),
    ['lab'],
  );
});

t.test('SupervisorMetrics tells its hand-off watchers, and a watcher that throws harms nothing', async (t) => {
  const metrics = new SupervisorMetrics(new Metrics(), { status: () => status(), queueLengths: () => new Map() });
  const heard: Array<[string, number]> = [];
  metrics.watchHandoffs(() => {
    throw new Error('broken watcher');
  });
  const w = metrics.watchHandoffs((pool, ms) => heard.push([pool, ms]));
  t.doesNotThrow(() => metrics.handedOut('desk', 'v1', 250));
  w.dispose();
  metrics.handedOut('desk', 'v1', 300);
  t.same(heard, [['desk', 250]], 'heard until disposed');
});
