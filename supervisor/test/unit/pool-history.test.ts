import t from 'tap';
import { Metrics } from '../../src/app/metrics.js';
import { MINUTE_MS, PoolHistory } from '../../src/app/pool-history.js';
import type { SupervisorStatus } from '../../src/app/reconciler.js';
import { RingBuffer } from '../../src/app/ring-buffer.js';
import { SupervisorMetrics } from '../../src/app/supervisor-metrics.js';
import { emptyCounts } from '../../src/domain/status.js';
import { HistoryKeeper } from '../../src/app/history-keeper.js';
import { isSavedHistory, trimHistory, type SavedHistory } from '../../src/domain/pool-history.js';
import type { HistoryStore } from '../../src/ports/history-store.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

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

const minute = (at: number, clean = 1) => ({ at, clean, size: 2, handoffs: 0, waitSumMs: 0, waitMaxMs: 0 });

t.test('saved and restored: the minutes go on where they were, hand-offs of the current minute added to', async (t) => {
  const t0 = Date.UTC(2030, 0, 1, 10, 0, 0);
  const clock = new FakeClock(t0);
  const before = new PoolHistory(clock);
  before.observe(status(['desk', 1, 2], ['lab', 1, 1]));
  before.handedOut('desk', 400);
  clock.advance(MINUTE_MS + 10_000);
  before.handedOut('desk', 200);
  const saved = JSON.parse(JSON.stringify(before.saved())) as unknown;
  t.ok(isSavedHistory(saved), 'what is saved reads back as a saved history');

  // Restarted 20 s later, in the same minute, with lab no longer configured.
  clock.advance(20_000);
  const after = new PoolHistory(clock);
  after.restore(saved as SavedHistory, new Set(['desk']));
  after.observe({ state: 'starting', reason: '', line: 'starting', pools: [] });
  t.same(after.snapshot().pools.map((p) => p.name), ['desk'], 'the status before the first round (no pools yet) forgets nothing');
  after.observe(status(['desk', 2, 2]));
  after.handedOut('desk', 600);
  const pools = after.snapshot().pools;
  t.same(pools.map((p) => p.name), ['desk'], 'a pool no longer configured is dropped');
  t.match(pools[0]?.samples, [
    { at: t0, clean: 1, handoffs: 1, waitMeanMs: 400 },
    { at: t0 + MINUTE_MS, clean: 1, handoffs: 2, waitMeanMs: 400, waitMaxMs: 600 },
  ]);
  clock.advance(3 * MINUTE_MS);
  t.same(after.snapshot().pools[0]?.samples.map((s) => s.clean), [1, 1, 2, 2, 2], 'the minutes after carry on');
});

t.test('trimHistory: the last day of the pools configured, one sample per minute, oldest first, none from the future', async (t) => {
  const now = Date.UTC(2030, 0, 2, 12, 0, 30);
  const current = Date.UTC(2030, 0, 2, 12, 0);
  const saved: SavedHistory = {
    version: 1,
    pools: {
      desk: [minute(current - 1440 * MINUTE_MS), minute(current - 1439 * MINUTE_MS), minute(current, 2), minute(current - MINUTE_MS), minute(current - MINUTE_MS, 0), minute(current + MINUTE_MS)],
      gone: [minute(current)],
      stale: [minute(current - 2000 * MINUTE_MS)],
    },
  };
  const kept = trimHistory(saved, new Set(['desk', 'stale', 'lab']), now, 1440);
  t.same([...kept.keys()], ['desk'], 'gone is not configured; stale has nothing left; lab has nothing saved');
  t.same(kept.get('desk')?.map((m) => [(m.at - current) / MINUTE_MS, m.clean]), [[-1439, 1], [-1, 0], [0, 2]], 'a day ago is one minute too old; the later of two same minutes wins');
});

t.test('isSavedHistory: a file that is not a saved history is refused', async (t) => {
  t.ok(isSavedHistory({ version: 1, pools: {} }));
  t.ok(isSavedHistory({ version: 1, pools: { desk: [minute(MINUTE_MS)] } }));
  for (const bad of [null, [], { version: 2, pools: {} }, { version: 1, pools: [] }, { version: 1, pools: { desk: [{ ...minute(MINUTE_MS), clean: -1 }] } }, { version: 1, pools: { desk: [minute(1000)] } }, { version: 1, pools: { desk: [{ at: MINUTE_MS }] } }]) {
    t.notOk(isSavedHistory(bad), JSON.stringify(bad));
  }
});

t.test('HistoryKeeper: taken up at start, written every few minutes and when asked; an unusable file or a failing disk is said once', async (t) => {
  const clock = new FakeClock(Date.UTC(2030, 0, 1, 10, 0, 0));
  const logger = new MemoryLogger();
  let stored: SavedHistory | undefined = { version: 1, pools: { desk: [minute(Date.UTC(2030, 0, 1, 9, 59))] } };
  const fail = { save: false, load: undefined as Error | undefined };
  const store: HistoryStore = {
    load: async () => {
      if (fail.load) throw fail.load;
      return stored;
    },
    save: async (h) => {
      if (fail.save) throw new Error('disk full');
      stored = h;
    },
  };
  const history = new PoolHistory(clock);
  const keeper = new HistoryKeeper(history, { store, clock, logger });
  await keeper.load(new Set(['desk']));
  t.equal(history.snapshot().pools[0]?.samples.length, 2, 'the saved minute, and the current one');

  const stop = new AbortController();
  const running = keeper.run(stop.signal, 1000);
  history.observe(status(['desk', 0, 2]));
  await clock.sleeping();
  clock.advance(1000);
  // Asleep again: the round's save is done.
  await new Promise((r) => setImmediate(r));
  await clock.sleeping();
  t.equal(stored?.pools['desk']?.at(-1)?.clean, 0, 'written after a period');
  stop.abort();
  await running;
  fail.save = true;
  await keeper.save();
  await keeper.save();
  t.equal(logger.find('admin-history-save-failed').length, 1, 'a failing disk is said once');
  fail.save = false;
  await keeper.save();
  t.equal(logger.find('admin-history-saved').length, 1, 'and when it works again');

  fail.load = new Error('not a saved history');
  const fresh = new PoolHistory(clock);
  await new HistoryKeeper(fresh, { store, clock, logger }).load(new Set(['desk']));
  t.match(logger.find('admin-history-unusable'), [{ level: 'warning', fields: { error: 'not a saved history', using: 'an empty history' } }], 'said once, not fatal');
  t.same(fresh.snapshot().pools, [], 'the plots start afresh');
});
