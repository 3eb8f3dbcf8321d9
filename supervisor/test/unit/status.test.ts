import t from 'tap';
import { emptyCounts, poolStatus, statusLine, type PoolStatus } from '../../src/domain/status.js';
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
