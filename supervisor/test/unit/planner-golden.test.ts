// The planner after a switch of golden image: which image new clones record,
// and how VMs of the old image give way.
import t from 'tap';
import { plan, type Desired, type PoolSpec } from '../../src/domain/planner.js';
import type { Step } from '../../src/domain/steps.js';
import { vmName, type ObservedVm, type VmState } from '../../src/domain/vm.js';

const NOW = 1_900_000_000_000;
const OLD = '/srv/golden.qcow2';
const NEW = '/var/lib/tabula/images/v2.qcow2';

function spec(over: Partial<PoolSpec> = {}): PoolSpec {
  return { name: 'desk', size: 3, bootTimeoutMs: 60_000, canClone: true, cloneNotBefore: 0, limits: { idleTimeoutMs: 0, maxSessionMs: 0, warnBeforeMs: 0 }, memoryMiB: 512, golden: NEW, ...over };
}

function desired(pool = spec()): Desired {
  return { pools: [pool], maxParallelBoots: 2, handoffTimeoutMs: 40_000 };
}

/** `golden` null: a VM made before images were recorded. */
function vm(slot: number, state: VmState, golden: string | null = OLD): ObservedVm {
  const session = state === 'in-use' ? { session: { id: `s${slot}`, station: '169.254.24.10', protocol: 'v1' as const, handedAt: NOW - 1000 } } : {};
  return {
    name: vmName('desk', slot),
    uuid: `u${slot}`,
    active: state !== 'cloning',
    agentConnected: state !== 'cloning' && state !== 'booting',
    record: { pool: 'desk', slot, state, createdAt: NOW - 9000, stateSince: NOW - 5000, ...session, ...(golden === null ? {} : { golden }) },
  };
}

const steps = (vms: ObservedVm[], pool = spec()): string[] =>
  plan({ vms, files: vms.map((v) => ({ pool: 'desk', file: `${v.name}.qcow2` })) }, desired(pool), NOW).steps.map((s: Step) => `${s.kind} ${'name' in s ? s.name : ''}${'reason' in s ? ` ${s.reason}` : ''}`);

t.test('a new clone records the image it is made from', async (t) => {
  const p = plan({ vms: [], files: [] }, desired(spec({ size: 1 })), NOW);
  t.match(p.steps[0], { kind: 'define-vm', record: { golden: NEW } });
  const before = plan({ vms: [], files: [] }, desired(spec({ size: 1, golden: undefined })), NOW);
  t.notOk(before.steps[0]?.kind === 'define-vm' && 'golden' in before.steps[0].record, 'none without a known image');
});

t.test('one clean VM of the old image is replaced at a time, the lowest slot first, while the pool is whole', async (t) => {
  t.same(steps([vm(0, 'in-use'), vm(1, 'clean'), vm(2, 'clean')]), ['destroy-vm tabula-desk-1 image-changed'], 'not the VM in use');
  t.same(steps([vm(0, 'clean', NEW), vm(1, 'clean'), vm(2, 'booting', NEW)]), [], 'not while a clone boots');
  t.same(steps([vm(0, 'clean', NEW), vm(1, 'clean')]), ['define-vm tabula-desk-2'], 'not while a slot is empty: it is filled first');
  t.same(steps([vm(0, 'clean', NEW), vm(1, 'clean'), vm(2, 'dirty', NEW)]), ['destroy-vm tabula-desk-2 dirty'], 'not while a VM is going');
  t.same(steps([vm(0, 'clean'), vm(1, 'clean'), vm(2, 'clean')], spec({ canClone: false })), [], 'not while the new image is unusable');
  t.same(steps([vm(0, 'clean'), vm(1, 'clean'), vm(2, 'clean')], spec({ drained: true })), [], 'not in a drained pool (nothing would refill it)');
  t.same(steps([vm(0, 'clean'), vm(1, 'clean'), vm(2, 'clean')], spec({ cloneNotBefore: NOW + 1 })), [], 'not during a backoff after failed clones');
  t.same(steps([vm(0, 'clean', NEW), vm(1, 'clean', NEW), vm(2, 'in-use')]), [], 'a session on the old image goes on');
  t.same(steps([vm(0, 'clean', null), vm(1, 'clean', null), vm(2, 'clean', NEW)]), [], 'VMs that recorded no image are left alone');
  t.same(steps([vm(0, 'clean'), vm(1, 'clean'), vm(2, 'clean')], spec({ golden: undefined })), [], 'nor is anything replaced without a known image');
});

t.test('a VM defined for the old image but not cloned yet is removed, not cloned from the new one', async (t) => {
  const cloning = vm(0, 'cloning');
  t.same(plan({ vms: [cloning], files: [] }, desired(spec({ size: 1 })), NOW).steps.map((s) => `${s.kind} ${'reason' in s ? s.reason : ''}`), ['undefine-vm image-changed']);
  const current = vm(0, 'cloning', NEW);
  t.same(plan({ vms: [current], files: [] }, desired(spec({ size: 1 })), NOW).steps.map((s) => s.kind), ['clone-disk']);
});
