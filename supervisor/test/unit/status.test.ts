import t from 'tap';
import { emptyCounts, healthChanges, lastActivity, liveSessions, poolStatus, statusLine, type PoolStatus, type SessionView } from '../../src/domain/status.js';
import type { ObservedVm, VmState } from '../../src/domain/vm.js';

const HEALTHY = { healthy: true, reason: '' };

function vm(pool: string, slot: number, state: VmState, spicePort?: number): ObservedVm {
  return {
    name: `tabula-${pool}-${slot}`,
    uuid: `u-${pool}-${slot}`,
    active: state !== 'cloning',
    agentConnected: state === 'clean',
    ...(spicePort === undefined ? {} : { spicePort }),
    record: { pool, slot, state, createdAt: 1000, stateSince: 2000 + slot },
  };
}

t.test('poolStatus counts each state of the pool\'s own VMs only', async (t) => {
  const s = poolStatus('desk', 4, [vm('desk', 0, 'clean'), vm('desk', 1, 'clean'), vm('desk', 2, 'booting'), vm('lab', 0, 'dirty'), vm('desk', 3, 'in-use')], HEALTHY);
  t.same(s.counts, { cloning: 0, booting: 1, clean: 2, 'in-use': 1, dirty: 0 });
  t.equal(s.size, 4);
  t.equal(s.vms.length, 4);
});

t.test('poolStatus lists VMs by slot with what a caller needs', async (t) => {
  const s = poolStatus('desk', 3, [vm('desk', 2, 'booting'), vm('desk', 0, 'clean', 5920), vm('desk', 1, 'cloning')], { healthy: false, reason: 'why' });
  t.same(s.vms.map((v) => v.slot), [0, 1, 2]);
  t.same(s.vms[0], { name: 'tabula-desk-0', uuid: 'u-desk-0', pool: 'desk', slot: 0, state: 'clean', active: true, stateSince: 2000, spicePort: 5920 });
  t.notOk('spicePort' in (s.vms[1] ?? {}), 'no port when libvirt reports none');
  t.equal(s.healthy, false);
  t.equal(s.healthReason, 'why');
});

t.test('emptyCounts has every state at zero, fresh each time', async (t) => {
  const a = emptyCounts();
  t.same(a, { cloning: 0, booting: 0, clean: 0, 'in-use': 0, dirty: 0 });
  a.clean = 3;
  t.equal(emptyCounts().clean, 0);
});

t.test('statusLine says clean/size first, then the other non-zero states in lifecycle order', async (t) => {
  const desk = poolStatus('desk', 4, [vm('desk', 0, 'dirty'), vm('desk', 1, 'clean'), vm('desk', 2, 'booting'), vm('desk', 3, 'cloning'), vm('desk', 4, 'booting')], HEALTHY);
  t.equal(statusLine([desk]), 'desk: 1/4 clean, 1 cloning, 2 booting, 1 dirty');
});

t.test('statusLine joins pools and shows why a pool is unhealthy', async (t) => {
  const desk = poolStatus('desk', 2, [vm('desk', 0, 'clean'), vm('desk', 1, 'clean')], HEALTHY);
  const lab: PoolStatus = poolStatus('lab', 1, [], { healthy: false, reason: 'golden image /g.qcow2 does not exist' });
  t.equal(statusLine([desk, lab]), 'desk: 2/2 clean; lab: 0/1 clean, UNHEALTHY: golden image /g.qcow2 does not exist');
});

t.test('statusLine without pools says so', async (t) => {
  t.equal(statusLine([]), 'no pools configured');
});

t.test('liveSessions lists the sessions of in-use VMs, oldest first, with where they run', async (t) => {
  const inUse = (slot: number, id: string, handedAt: number, extra: Partial<ObservedVm> = {}): ObservedVm => ({
    ...vm('desk', slot, 'in-use', 5920 + slot),
    ...extra,
    record: { pool: 'desk', slot, state: 'in-use', createdAt: 1000, stateSince: 2000, session: { id, station: `169.254.24.${10 + slot}`, protocol: 'v1', handedAt, ...(slot === 1 ? { stationName: 'kiosk-1', connectedAt: handedAt + 500 } : {}) } },
  });
  const dirty: ObservedVm = { ...vm('desk', 2, 'dirty'), record: { pool: 'desk', slot: 2, state: 'dirty', createdAt: 1000, stateSince: 2000, session: { id: 'gone', station: '169.254.24.99', protocol: 'v0', handedAt: 1 } } };
  const desk = poolStatus('desk', 3, [inUse(0, 'b', 9000), inUse(1, 'a', 8000, { lastInputAt: 9500 }), dirty], HEALTHY);
  const live = liveSessions([desk]);
  t.same(
    live.map((s) => [s.id, s.vm, s.pool, s.station, s.stationName]),
    [
      ['a', 'tabula-desk-1', 'desk', '169.254.24.11', 'kiosk-1'],
      ['b', 'tabula-desk-0', 'desk', '169.254.24.10', undefined],
    ],
    'the dirty VM\'s ended session is not live',
  );
  t.equal(lastActivity(live[0] as SessionView), 9500, 'input reported: its time');
  t.equal(lastActivity(live[1] as SessionView), 9000, 'nothing else known: the hand-off');
  const { lastInputAt: _input, ...noInput } = live[0] as SessionView;
  t.equal(lastActivity(noInput), 8500, 'connected, no input: the connection');
  t.equal(desk.vms[2]?.session, undefined, 'no session on a dirty VM in the status');
});

t.test('healthChanges: flips and new kinds of trouble, not new figures nor new pools', async (t) => {
  const p = (name: string, healthy: boolean, reason = ''): PoolStatus => ({ ...poolStatus(name, 1, [], { healthy, reason }) });
  t.same(healthChanges([p('desk', true)], [p('desk', false, 'host memory low: 900 MiB')]), [{ pool: 'desk', healthy: false, reason: 'host memory low: 900 MiB' }]);
  t.same(healthChanges([p('desk', false, 'host memory low: 900 MiB')], [p('desk', false, 'host memory low: 800 MiB')]), [], 'the same trouble with other figures');
  t.same(healthChanges([p('desk', false, 'host memory low: 900 MiB')], [p('desk', false, 'disk full: 3 MiB')]), [{ pool: 'desk', healthy: false, reason: 'disk full: 3 MiB' }]);
  t.same(healthChanges([p('desk', false, 'x')], [p('desk', true)]), [{ pool: 'desk', healthy: true, reason: '' }]);
  t.same(healthChanges([p('desk', true)], [p('desk', true), p('lab', false, 'y')]), [], 'a pool that just appeared');
});

t.test('statusLine marks a drained pool', async (t) => {
  t.equal(statusLine([poolStatus('desk', 2, [vm('desk', 0, 'clean')], HEALTHY, true)]), 'desk: 1/2 clean, DRAINED');
});
