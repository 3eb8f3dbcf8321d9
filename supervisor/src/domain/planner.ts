import { ownerOfFile, vmFiles } from './pool.js';
import { sessionDeadline, type SessionLimits } from './session-limits.js';
import { endCauseOf, expectOf, type RemovalReason, type Step } from './steps.js';
import { endedSession, vmName, withState, type ObservedVm, type VmRecord } from './vm.js';

/** What a pool should look like, from config plus what health allows now. */
export interface PoolSpec {
  readonly name: string;
  readonly size: number;
  readonly bootTimeoutMs: number;
  /** False while the golden image is missing or invalid: no new clones at all. */
  readonly canClone: boolean;
  /** Backoff after failed clones: no new VM is defined before this time. */
  readonly cloneNotBefore: number;
  readonly limits: SessionLimits;
  /** Memory each of its VMs takes, in MiB, against the host's budget. */
  readonly memoryMiB: number;
  /**
   * Drained by staff: no new clone is defined, so slots emptied by ended
   * sessions stay empty; what is there already (clean, booting, in use) stays.
   */
  readonly drained?: boolean;
  /**
   * The golden image new clones come from. A clean VM recorded with another
   * (staff switched images) is replaced, one at a time while the pool is
   * otherwise whole; an in-use one finishes its session on it.
   */
  readonly golden?: string;
}

export interface Desired {
  readonly pools: readonly PoolSpec[];
  /** Clones booting at once, across pools: a small host boots a few at a time faster than all. */
  readonly maxParallelBoots: number;
  /**
   * How long after a hand-off a VM whose station never connected is given up
   * on. The dispatcher that handed it out normally settles it well before.
   */
  readonly handoffTimeoutMs: number;
  /**
   * Host memory new VMs may take (MemAvailable minus the reserve), in MiB;
   * undefined when not measured. No VM is defined that would not fit.
   */
  readonly memoryBudgetMiB?: number;
}

export interface PoolFile {
  readonly pool: string;
  readonly file: string;
}

export interface Observed {
  readonly vms: readonly ObservedVm[];
  /** Files in the storage directories of the configured pools. */
  readonly files: readonly PoolFile[];
}

export interface Plan {
  readonly steps: readonly Step[];
  /** Earliest time at which the plan would change on its own (a deadline or a backoff ending). */
  readonly wakeAt?: number;
}

/**
 * plan(observed, desired, now) → steps. At most one step per VM or slot, so
 * a crash between any two steps leaves a state that the next plan finishes.
 */
export function plan(observed: Observed, desired: Desired, now: number): Plan {
  const steps: Step[] = [];
  const wake: number[] = [];
  const pools = new Map(desired.pools.map((p) => [p.name, p]));
  const byName = new Map(observed.vms.map((vm) => [vm.name, vm]));
  const filesOf = groupFiles(observed.files);
  const replace = staleToReplace(observed.vms, desired.pools, now);

  for (const vm of observed.vms) {
    const pool = pools.get(vm.record.pool);
    const wanted = pool !== undefined && vm.record.slot < pool.size && vm.name === vmName(pool.name, vm.record.slot);
    const step = wanted ? planWantedVm(vm, pool, desired, filesOf.get(vm.name) ?? new Set(), now, wake, replace) : planUnwantedVm(vm, now);
    if (step) steps.push(step);
  }

  for (const { pool, file } of observed.files) {
    const owner = ownerOfFile(pool, file);
    if (owner === undefined) continue;
    const vm = byName.get(owner);
    const leftoverTemp = vm !== undefined && vm.record.state !== 'cloning' && file.endsWith('.tmp');
    if (vm === undefined || leftoverTemp) steps.push({ kind: 'delete-file', pool, file });
  }

  let boots = observed.vms.filter((vm) => vm.record.state === 'cloning' || vm.record.state === 'booting').length;
  // Clones not started, or still booting, have not taken all their memory yet (QEMU
  // allocates as the guest touches it): it is spoken for already.
  const memoryOf = new Map(desired.pools.map((p) => [p.name, p.memoryMiB]));
  const growing = observed.vms.filter((vm) => vm.record.state === 'cloning' || vm.record.state === 'booting');
  let budget = (desired.memoryBudgetMiB ?? Number.POSITIVE_INFINITY) - growing.reduce((sum, vm) => sum + (memoryOf.get(vm.record.pool) ?? 0), 0);
  for (const pool of desired.pools) {
    if (!pool.canClone || pool.drained === true) continue;
    if (now < pool.cloneNotBefore) {
      wake.push(pool.cloneNotBefore);
      continue;
    }
    for (let slot = 0; slot < pool.size && boots < desired.maxParallelBoots; slot++) {
      const name = vmName(pool.name, slot);
      // A slot is refilled only once its old domain and files are gone, so a
      // fresh clone can never pick up a previous visitor's disk.
      if (byName.has(name) || filesOf.has(name)) continue;
      if (pool.memoryMiB > budget) break;
      steps.push({ kind: 'define-vm', name, record: newRecord(pool.name, slot, now, pool.golden) });
      boots++;
      budget -= pool.memoryMiB;
    }
  }

  return wake.length > 0 ? { steps, wakeAt: Math.min(...wake) } : { steps };
}

function planWantedVm(vm: ObservedVm, pool: PoolSpec, desired: Desired, files: ReadonlySet<string>, now: number, wake: number[], replace: ReadonlySet<string>): Step | undefined {
  const r = vm.record;
  switch (r.state) {
    case 'cloning': {
      if (vm.active) return destroy(vm, now, 'inconsistent');
      // Defined for the image before a switch: its disk would come from the new one.
      if (isStale(r, pool)) return undefine(vm, 'image-changed');
      if (!pool.canClone) return undefined;
      const { overlay } = vmFiles(pool.name, r.slot);
      if (!files.has(overlay)) return { kind: 'clone-disk', name: vm.name, pool: pool.name, slot: r.slot, expect: expectOf(vm.record) };
      return { kind: 'start-vm', name: vm.name, record: withState(r, 'booting', now, { bootDeadline: now + pool.bootTimeoutMs }), expect: expectOf(vm.record) };
    }
    case 'booting': {
      if (!vm.active) return undefine(vm, 'died-while-booting');
      if (vm.agentConnected) return { kind: 'mark-clean', name: vm.name, record: withState(r, 'clean', now), expect: expectOf(vm.record) };
      const deadline = r.bootDeadline ?? r.stateSince + pool.bootTimeoutMs;
      if (now >= deadline) return destroy(vm, now, 'boot-timeout');
      wake.push(deadline);
      return undefined;
    }
    case 'clean':
      // A VM that stopped on its own is never started again: its disk may hold
      // a visitor's data, and a clean one is cheaper to clone than to trust.
      if (!vm.active) return undefine(vm, 'died');
      return replace.has(vm.name) ? destroy(vm, now, 'image-changed') : undefined;
    case 'in-use':
      return vm.active ? planSession(vm, pool, desired, now, wake) : undefine(vm, 'session-ended');
    case 'dirty':
      return vm.active ? destroy(vm, now, 'dirty') : undefine(vm, 'dirty');
  }
}

/**
 * A running in-use VM. The session ends when its Spice client is gone or a
 * limit (idle, length) is reached; a hand-off nobody took up is given up. None
 * of these ever returns the VM to clean: only the dispatcher that watched the
 * whole wait may do that.
 */
function planSession(vm: ObservedVm, pool: PoolSpec, desired: Desired, now: number, wake: number[]): Step | undefined {
  const s = vm.record.session;
  if (s === undefined) return destroy(vm, now, 'inconsistent');
  if (vm.clientConnected === undefined) return undefined;
  if (s.connectedAt !== undefined) {
    if (!vm.clientConnected) return destroy(vm, now, 'session-ended');
    const deadline = sessionDeadline(s, pool.limits, vm.lastInputAt);
    if (deadline === undefined) return undefined;
    if (now >= deadline.at) return destroy(vm, now, deadline.reason);
    wake.push(deadline.at);
    return undefined;
  }
  if (vm.clientConnected) return { kind: 'mark-connected', name: vm.name, record: { ...vm.record, session: { ...s, connectedAt: now } }, expect: expectOf(vm.record) };
  const deadline = s.handedAt + desired.handoffTimeoutMs;
  if (now >= deadline) return destroy(vm, now, 'handoff-abandoned');
  wake.push(deadline);
  return undefined;
}

function planUnwantedVm(vm: ObservedVm, now: number): Step | undefined {
  // A visitor's session is not cut short by a smaller pool; the VM goes when it ends.
  if (vm.active && vm.record.state === 'in-use') return undefined;
  return vm.active ? destroy(vm, now, 'unwanted') : undefine(vm, 'unwanted');
}

function destroy(vm: ObservedVm, now: number, reason: RemovalReason): Step {
  // Marked dirty first, so a crash right after the destroy cannot be read as "died";
  // a session it ends keeps when and why, for the event log.
  const record = vm.record.state === 'in-use' ? endedSession(vm.record, now, endCauseOf('destroy-vm', reason)) : withState(vm.record, 'dirty', now);
  return { kind: 'destroy-vm', name: vm.name, record, reason, expect: expectOf(vm.record) };
}

function undefine(vm: ObservedVm, reason: RemovalReason): Step {
  const session = vm.record.state === 'in-use' ? vm.record.session?.id : undefined;
  return { kind: 'undefine-vm', name: vm.name, pool: vm.record.pool, reason, expect: expectOf(vm.record), record: vm.record, ...(session === undefined ? {} : { session }) };
}

function newRecord(pool: string, slot: number, now: number, golden: string | undefined): VmRecord {
  return { pool, slot, state: 'cloning', createdAt: now, stateSince: now, ...(golden === undefined ? {} : { golden }) };
}

/** Recorded with another golden image than the pool's now (a VM that recorded none is left alone). */
function isStale(r: VmRecord, pool: PoolSpec): boolean {
  return pool.golden !== undefined && r.golden !== undefined && r.golden !== pool.golden;
}

/**
 * The clean VMs of an old golden image to replace now: one per pool, and only
 * while every slot of the pool holds a clean or in-use VM, the new image is
 * usable and no backoff runs. So a pool being switched keeps all but one VM
 * ready, and an image whose clones fail costs it one slot, not all of them.
 */
function staleToReplace(vms: readonly ObservedVm[], pools: readonly PoolSpec[], now: number): Set<string> {
  const out = new Set<string>();
  for (const pool of pools) {
    if (pool.golden === undefined || !pool.canClone || pool.drained === true || now < pool.cloneNotBefore) continue;
    const mine = vms.filter((vm) => vm.record.pool === pool.name);
    const whole = mine.length === pool.size && mine.every((vm) => vm.record.slot < pool.size && vm.active && (vm.record.state === 'clean' || vm.record.state === 'in-use'));
    if (!whole) continue;
    const stale = mine.filter((vm) => vm.record.state === 'clean' && isStale(vm.record, pool)).sort((a, b) => a.record.slot - b.record.slot)[0];
    if (stale !== undefined) out.add(stale.name);
  }
  return out;
}

function groupFiles(files: readonly PoolFile[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const { pool, file } of files) {
    const owner = ownerOfFile(pool, file);
    if (owner === undefined) continue;
    let set = out.get(owner);
    if (!set) out.set(owner, (set = new Set()));
    set.add(file);
  }
  return out;
}
