import t from 'tap';
import { plan, type Desired, type Observed, type PoolFile, type PoolSpec } from '../../src/domain/planner.js';
import type { Step } from '../../src/domain/steps.js';
import { VM_STATES, vmName, type ObservedVm, type VmRecord, type VmState } from '../../src/domain/vm.js';

const HANDOFF_MS = 40_000;
const NO_LIMITS = { idleTimeoutMs: 0, maxSessionMs: 0, warnBeforeMs: 0 };

const NOW = 1_900_000_000_000;
const BOOT_MS = 60_000;

function spec(over: Partial<PoolSpec> = {}): PoolSpec {
  return { name: 'desk', size: 2, bootTimeoutMs: BOOT_MS, canClone: true, cloneNotBefore: 0, limits: NO_LIMITS, memoryMiB: 512, ...over };
}

function desired(pools: PoolSpec[] = [spec()], maxParallelBoots = 2): Desired {
  return { pools, maxParallelBoots, handoffTimeoutMs: HANDOFF_MS };
}

function vm(
  slot: number,
  state: VmState,
  over: { pool?: string; active?: boolean; agent?: boolean; client?: boolean; record?: Partial<VmRecord>; name?: string } = {},
): ObservedVm {
  const pool = over.pool ?? 'desk';
  return {
    name: over.name ?? vmName(pool, slot),
    uuid: `uuid-${pool}-${slot}`,
    active: over.active ?? (state !== 'cloning'),
    agentConnected: over.agent ?? false,
    ...(over.client === undefined ? {} : { clientConnected: over.client }),
    record: { pool, slot, state, createdAt: NOW - 10_000, stateSince: NOW - 5_000, ...over.record },
  };
}

/** The expect a step planned on `vm(…)` carries. */
const EXPECT = (state: VmState) => ({ state, since: NOW - 5_000 });

/** A session handed out `ago` ms before NOW. */
function session(ago: number, connected?: number) {
  return { id: 's1', station: '169.254.24.10', protocol: 'v0' as const, handedAt: NOW - ago, ...(connected === undefined ? {} : { connectedAt: connected }) };
}

function files(pool: string, ...names: string[]): PoolFile[] {
  return names.map((file) => ({ pool, file }));
}

function observed(vms: ObservedVm[] = [], fs: PoolFile[] = []): Observed {
  return { vms, files: fs };
}

function kinds(steps: readonly Step[]): string[] {
  return steps.map((s) => `${s.kind} ${'name' in s ? s.name : ''}${s.kind === 'delete-file' ? s.file : ''}`.trim());
}

t.test('an empty pool gets define-vm steps for its slots, up to maxParallelBoots', async (t) => {
  const p = plan(observed(), desired([spec({ size: 5 })], 3), NOW);
  t.same(kinds(p.steps), ['define-vm tabula-desk-0', 'define-vm tabula-desk-1', 'define-vm tabula-desk-2']);
  t.same(p.steps[0], {
    kind: 'define-vm',
    name: 'tabula-desk-0',
    record: { pool: 'desk', slot: 0, state: 'cloning', createdAt: NOW, stateSince: NOW },
  });
  t.equal(p.wakeAt, undefined);
});

t.test('maxParallelBoots is shared across pools and counts clones already on their way', async (t) => {
  const p = plan(observed([vm(0, 'booting')]), desired([spec({ size: 3 }), spec({ name: 'lab', size: 3 })], 3), NOW);
  t.same(kinds(p.steps).filter((k) => k.startsWith('define')), ['define-vm tabula-desk-1', 'define-vm tabula-desk-2']);
  const busy = plan(observed([vm(0, 'booting'), vm(1, 'cloning')]), desired([spec({ size: 3 }), spec({ name: 'lab' })], 2), NOW);
  t.same(busy.steps.filter((s) => s.kind === 'define-vm'), []);
});

t.test('a pool of size 0 gets nothing', async (t) => {
  t.same(plan(observed(), desired([spec({ size: 0 })]), NOW).steps, []);
});

t.test('a cloning VM without its overlay gets clone-disk', async (t) => {
  const p = plan(observed([vm(0, 'cloning')]), desired([spec({ size: 1 })]), NOW);
  t.same(p.steps, [{ kind: 'clone-disk', name: 'tabula-desk-0', pool: 'desk', slot: 0, expect: EXPECT('cloning') }]);
});

t.test('a cloning VM whose overlay exists is started with a booting record and a boot deadline', async (t) => {
  const before = vm(0, 'cloning');
  const p = plan(observed([before], files('desk', 'tabula-desk-0.qcow2')), desired([spec({ size: 1 })]), NOW);
  t.same(p.steps, [
    {
      kind: 'start-vm',
      name: 'tabula-desk-0',
      record: { pool: 'desk', slot: 0, state: 'booting', createdAt: before.record.createdAt, stateSince: NOW, bootDeadline: NOW + BOOT_MS },
      expect: EXPECT('cloning'),
    },
  ]);
});

t.test('a cloning VM that is somehow running is destroyed as inconsistent', async (t) => {
  const p = plan(observed([vm(0, 'cloning', { active: true })]), desired([spec({ size: 1 })]), NOW);
  t.equal(p.steps.length, 1);
  t.match(p.steps[0], { kind: 'destroy-vm', name: 'tabula-desk-0', reason: 'inconsistent', record: { state: 'dirty' } });
});

t.test('a cloning VM waits while the pool cannot clone', async (t) => {
  t.same(plan(observed([vm(0, 'cloning')]), desired([spec({ size: 1, canClone: false })]), NOW).steps, []);
});

t.test('a booting VM whose agent connected is marked clean', async (t) => {
  const p = plan(observed([vm(0, 'booting', { agent: true, record: { bootDeadline: NOW + 1 } })]), desired([spec({ size: 1 })]), NOW);
  t.equal(p.steps.length, 1);
  const step = p.steps[0];
  t.equal(step?.kind, 'mark-clean');
  if (step?.kind !== 'mark-clean') return;
  t.equal(step.record.state, 'clean');
  t.equal(step.record.stateSince, NOW);
  t.equal(step.record.createdAt, NOW - 10_000, 'createdAt is kept');
  t.notOk('bootDeadline' in step.record, 'a clean record has no boot deadline');
});

t.test('a booting VM past its deadline is destroyed for boot-timeout and recorded dirty', async (t) => {
  for (const deadline of [NOW, NOW - 1]) {
    const p = plan(observed([vm(0, 'booting', { record: { bootDeadline: deadline } })]), desired([spec({ size: 1 })]), NOW);
    t.equal(p.steps.length, 1);
    const step = p.steps[0];
    t.equal(step?.kind, 'destroy-vm');
    if (step?.kind !== 'destroy-vm') return;
    t.equal(step.reason, 'boot-timeout');
    t.equal(step.record.state, 'dirty');
    t.equal(step.record.stateSince, NOW);
    t.notOk('bootDeadline' in step.record);
  }
});

t.test('a booting VM before its deadline is waited for, and the plan wakes at the deadline', async (t) => {
  const p = plan(observed([vm(0, 'booting', { record: { bootDeadline: NOW + 1 } })]), desired([spec({ size: 1 })]), NOW);
  t.same(p.steps, []);
  t.equal(p.wakeAt, NOW + 1);
});

t.test('a booting VM without a recorded deadline times out bootTimeoutMs after it started booting', async (t) => {
  const early = plan(observed([vm(0, 'booting', { record: { stateSince: NOW - BOOT_MS + 1 } })]), desired([spec({ size: 1 })]), NOW);
  t.same(early.steps, []);
  t.equal(early.wakeAt, NOW + 1);
  const late = plan(observed([vm(0, 'booting', { record: { stateSince: NOW - BOOT_MS } })]), desired([spec({ size: 1 })]), NOW);
  t.match(late.steps, [{ kind: 'destroy-vm', reason: 'boot-timeout' }]);
});

t.test('a booting VM that stopped is undefined as died-while-booting', async (t) => {
  const booting = vm(0, 'booting', { active: false });
  const p = plan(observed([booting]), desired([spec({ size: 1 })]), NOW);
  t.same(p.steps, [{ kind: 'undefine-vm', name: 'tabula-desk-0', pool: 'desk', reason: 'died-while-booting', expect: EXPECT('booting'), record: booting.record }]);
});

t.test('a clean running VM, and an in-use one whose client is connected, are left alone', async (t) => {
  const inUse = vm(1, 'in-use', { client: true, record: { session: session(60_000, NOW - 50_000) } });
  t.same(plan(observed([vm(0, 'clean'), inUse]), desired(), NOW), { steps: [] });
  const unobserved = vm(1, 'in-use', { record: { session: session(600_000) } });
  t.same(plan(observed([vm(0, 'clean'), unobserved]), desired(), NOW), { steps: [] }, 'without a station LAN nobody judges sessions');
});

t.test('a clean VM that stopped is undefined as died; an in-use one as session-ended; never restarted', async (t) => {
  const died = vm(0, 'clean', { active: false });
  const stopped = vm(1, 'in-use', { active: false, record: { session: session(1000) } });
  const p = plan(observed([died, stopped]), desired(), NOW);
  t.same(p.steps, [
    { kind: 'undefine-vm', name: 'tabula-desk-0', pool: 'desk', reason: 'died', expect: EXPECT('clean'), record: died.record },
    { kind: 'undefine-vm', name: 'tabula-desk-1', pool: 'desk', reason: 'session-ended', expect: EXPECT('in-use'), record: stopped.record, session: 's1' },
  ]);
});

t.test('sessions: a client seen connects the session, a client gone ends it, a hand-off nobody took up is given up', async (t) => {
  const handed = vm(0, 'in-use', { client: true, record: { session: session(2_000) } });
  t.match(plan(observed([handed]), desired([spec({ size: 1 })]), NOW).steps, [
    { kind: 'mark-connected', name: 'tabula-desk-0', record: { state: 'in-use', session: { connectedAt: NOW, station: '169.254.24.10' } }, expect: EXPECT('in-use') },
  ]);
  const gone = vm(0, 'in-use', { client: false, record: { session: session(60_000, NOW - 30_000) } });
  t.match(plan(observed([gone]), desired([spec({ size: 1 })]), NOW).steps, [
    { kind: 'destroy-vm', reason: 'session-ended', record: { state: 'dirty', session: { id: 's1' } }, expect: { state: 'in-use', connectedAt: NOW - 30_000 } },
  ]);
  const waiting = vm(0, 'in-use', { client: false, record: { session: session(5_000) } });
  const w = plan(observed([waiting]), desired([spec({ size: 1 })]), NOW);
  t.same(w.steps, [], 'within the hand-off timeout the dispatcher decides');
  t.equal(w.wakeAt, NOW - 5_000 + HANDOFF_MS, 'wakes at the hand-off deadline');
  const abandoned = vm(0, 'in-use', { client: false, record: { session: session(HANDOFF_MS) } });
  t.match(plan(observed([abandoned]), desired([spec({ size: 1 })]), NOW).steps, [{ kind: 'destroy-vm', reason: 'handoff-abandoned', record: { state: 'dirty' } }], 'never back to clean');
  const noSession = vm(0, 'in-use', { client: true });
  t.match(plan(observed([noSession]), desired([spec({ size: 1 })]), NOW).steps, [{ kind: 'destroy-vm', reason: 'inconsistent' }]);
});

t.test('a dirty running VM is destroyed, a dirty stopped one undefined', async (t) => {
  const p = plan(observed([vm(0, 'dirty', { active: true }), vm(1, 'dirty', { active: false })]), desired(), NOW);
  t.match(p.steps, [
    { kind: 'destroy-vm', name: 'tabula-desk-0', reason: 'dirty', record: { state: 'dirty' } },
    { kind: 'undefine-vm', name: 'tabula-desk-1', pool: 'desk', reason: 'dirty' },
  ]);
  t.equal(p.steps.length, 2);
});

t.test('a VM in a slot beyond the pool size is removed as unwanted', async (t) => {
  const p = plan(observed([vm(2, 'clean'), vm(3, 'dirty', { active: false })]), desired([spec({ size: 2 })], 0), NOW);
  t.match(p.steps, [
    { kind: 'destroy-vm', name: 'tabula-desk-2', reason: 'unwanted' },
    { kind: 'undefine-vm', name: 'tabula-desk-3', reason: 'unwanted' },
  ]);
  t.equal(p.steps.length, 2);
});

t.test('a VM of a pool that is no longer configured is removed as unwanted', async (t) => {
  const p = plan(observed([vm(0, 'clean', { pool: 'gone' }), vm(1, 'booting', { pool: 'gone', active: false })]), desired([], 0), NOW);
  t.match(p.steps, [
    { kind: 'destroy-vm', name: 'tabula-gone-0', reason: 'unwanted' },
    { kind: 'undefine-vm', name: 'tabula-gone-1', pool: 'gone', reason: 'unwanted' },
  ]);
  t.equal(p.steps.length, 2);
});

t.test('a VM whose name does not match its recorded slot is removed as unwanted', async (t) => {
  const p = plan(observed([vm(0, 'clean', { name: 'tabula-desk-1' })]), desired([spec({ size: 2 })], 0), NOW);
  t.match(p.steps, [{ kind: 'destroy-vm', name: 'tabula-desk-1', reason: 'unwanted' }]);
});

t.test('an unwanted VM in use keeps running until its session ends', async (t) => {
  t.same(plan(observed([vm(5, 'in-use'), vm(0, 'in-use', { pool: 'gone' })]), desired([spec({ size: 2 })], 0), NOW).steps, []);
  t.match(plan(observed([vm(5, 'in-use', { active: false })]), desired([spec({ size: 2 })], 0), NOW).steps, [
    { kind: 'undefine-vm', reason: 'unwanted' },
  ]);
});

t.test('files of a slot without a domain are deleted', async (t) => {
  const p = plan(observed([], files('desk', 'tabula-desk-0.qcow2', 'tabula-desk-0.console.log', 'tabula-desk-7.qcow2.tmp')), desired([spec({ canClone: false })]), NOW);
  t.same(p.steps, [
    { kind: 'delete-file', pool: 'desk', file: 'tabula-desk-0.qcow2' },
    { kind: 'delete-file', pool: 'desk', file: 'tabula-desk-0.console.log' },
    { kind: 'delete-file', pool: 'desk', file: 'tabula-desk-7.qcow2.tmp' },
  ]);
});

t.test('files Tabula did not name are never touched', async (t) => {
  const foreign = files(
    'desk',
    'notes.txt',
    'tabula-desk-0.raw',
    'tabula-desk-x.qcow2',
    'tabula-desk-0.qcow2.bak',
    'tabula-lab-0.qcow2',
    'tabula-desk-.qcow2',
    'TABULA-desk-0.qcow2',
    'tabula-desk-0.qcow2/evil',
  );
  t.same(plan(observed([], foreign), desired([spec({ canClone: false })]), NOW).steps, []);
});

t.test('a leftover .tmp of a VM past cloning is deleted; a cloning VM keeps its .tmp', async (t) => {
  const tmp = files('desk', 'tabula-desk-0.qcow2', 'tabula-desk-0.qcow2.tmp');
  t.same(plan(observed([vm(0, 'clean')], tmp), desired([spec({ size: 1 })]), NOW).steps, [
    { kind: 'delete-file', pool: 'desk', file: 'tabula-desk-0.qcow2.tmp' },
  ]);
  const cloning = plan(observed([vm(0, 'cloning')], files('desk', 'tabula-desk-0.qcow2.tmp')), desired([spec({ size: 1 })]), NOW);
  t.same(kinds(cloning.steps), ['clone-disk tabula-desk-0']);
});

t.test('a slot with leftover files is not refilled in the same plan', async (t) => {
  const p = plan(observed([], files('desk', 'tabula-desk-0.console.log')), desired([spec({ size: 2 })]), NOW);
  t.same(kinds(p.steps), ['delete-file tabula-desk-0.console.log', 'define-vm tabula-desk-1']);
  const next = plan(observed([vm(1, 'cloning')]), desired([spec({ size: 2 })]), NOW);
  t.ok(kinds(next.steps).includes('define-vm tabula-desk-0'), 'refilled once the files are gone');
});

t.test('a slot whose domain still exists is not refilled', async (t) => {
  const p = plan(observed([vm(0, 'dirty', { active: false })]), desired([spec({ size: 1 })]), NOW);
  t.same(kinds(p.steps), ['undefine-vm tabula-desk-0']);
});

t.test('no clone is started while the pool cannot clone', async (t) => {
  const p = plan(observed(), desired([spec({ canClone: false }), spec({ name: 'lab', size: 1 })]), NOW);
  t.same(kinds(p.steps), ['define-vm tabula-lab-0']);
  t.equal(p.wakeAt, undefined, 'a golden image is looked at again by the reconciler, not by the plan');
});

t.test('during backoff no VM is defined and the plan wakes when the backoff ends', async (t) => {
  const p = plan(observed(), desired([spec({ cloneNotBefore: NOW + 4_000 })]), NOW);
  t.same(p.steps, []);
  t.equal(p.wakeAt, NOW + 4_000);
  t.equal(plan(observed(), desired([spec({ cloneNotBefore: NOW })]), NOW).steps.length, 2, 'the backoff ends at cloneNotBefore');
});

t.test('backoff holds back new VMs only: existing ones are still looked after', async (t) => {
  const p = plan(observed([vm(0, 'dirty')]), desired([spec({ cloneNotBefore: NOW + 4_000 })]), NOW);
  t.same(kinds(p.steps), ['destroy-vm tabula-desk-0']);
});

t.test('wakeAt is the earliest boot deadline or backoff end', async (t) => {
  const p = plan(
    observed([
      vm(0, 'booting', { record: { bootDeadline: NOW + 30_000 } }),
      vm(1, 'booting', { record: { bootDeadline: NOW + 10_000 } }),
      vm(0, 'booting', { pool: 'lab', record: { bootDeadline: NOW + 20_000 } }),
    ]),
    desired([spec(), spec({ name: 'lab', size: 2, cloneNotBefore: NOW + 15_000 })], 8),
    NOW,
  );
  t.same(p.steps, []);
  t.equal(p.wakeAt, NOW + 10_000);
});

t.test('a settled pool plans nothing and never wakes', async (t) => {
  t.same(plan(observed([vm(0, 'clean'), vm(1, 'clean')], files('desk', 'tabula-desk-0.qcow2', 'tabula-desk-1.qcow2')), desired(), NOW), { steps: [] });
});

t.test('plan does not modify what it is given', async (t) => {
  const o = observed([vm(0, 'booting', { agent: true }), vm(1, 'dirty')], files('desk', 'tabula-desk-3.qcow2'));
  const d = desired();
  const copy = structuredClone({ o, d });
  plan(o, d, NOW);
  t.same({ o, d }, copy);
});

// ---- properties over generated observations ----

/** A small deterministic PRNG, so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function generate(seed: number): { observed: Observed; desired: Desired; now: number } {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const poolNames = ['desk', 'lab', 'gone'];
  const pools = poolNames
    .slice(0, 2)
    .filter(() => r() < 0.9)
    .map((name) => spec({ name, size: Math.floor(r() * 5), canClone: r() < 0.8, cloneNotBefore: r() < 0.3 ? NOW + 1000 : 0 }));
  const vms = new Map<string, ObservedVm>();
  const fs: PoolFile[] = [];
  for (let i = 0; i < 10; i++) {
    const pool = pick(poolNames);
    const slot = Math.floor(r() * 6);
    const state = pick(VM_STATES);
    const active = r() < 0.6;
    const agent = r() < 0.3;
    const record = {
      ...(r() < 0.5 ? { bootDeadline: NOW + Math.floor((r() - 0.5) * 10_000) } : {}),
      ...(state === 'in-use' && r() < 0.9 ? { session: session(Math.floor(r() * 2 * HANDOFF_MS), r() < 0.5 ? NOW - 1000 : undefined) } : {}),
    };
    const client = r() < 0.15 ? undefined : r() < 0.5;
    const v = vm(slot, state, { pool, active, agent, record, ...(client === undefined ? {} : { client }) });
    vms.set(v.name, v);
  }
  for (let i = 0; i < 8; i++) {
    const pool = pick(poolNames.slice(0, 2));
    fs.push({ pool, file: `tabula-${pool}-${Math.floor(r() * 6)}${pick(['.qcow2', '.qcow2.tmp', '.console.log'])}` });
  }
  fs.push({ pool: 'desk', file: 'golden-backup.qcow2' });
  return { observed: { vms: [...vms.values()], files: [...new Map(fs.map((f) => [`${f.pool}/${f.file}`, f])).values()] }, desired: { pools, maxParallelBoots: 1 + Math.floor(r() * 4), handoffTimeoutMs: HANDOFF_MS }, now: NOW };
}

t.test('over many generated observations, every plan keeps the invariants', async (t) => {
  let checked = 0;
  const seen = new Set<string>();
  for (let seed = 1; seed <= 2000; seed++) {
    const g = generate(seed);
    const p = plan(g.observed, g.desired, g.now);
    for (const s of p.steps) seen.add('reason' in s ? `${s.kind}:${s.reason}` : s.kind);
    const problems: string[] = [];
    const named = p.steps.filter((s): s is Extract<Step, { name: string }> => 'name' in s);
    const names = named.map((s) => s.name);
    if (new Set(names).size !== names.length) problems.push(`two steps for one VM: ${kinds(p.steps).join(', ')}`);

    const byName = new Map(g.observed.vms.map((v) => [v.name, v]));
    const deleted = new Set(p.steps.flatMap((s) => (s.kind === 'delete-file' ? [`${s.pool}/${s.file}`] : [])));
    if (deleted.size !== p.steps.filter((s) => s.kind === 'delete-file').length) problems.push('a file deleted twice');
    for (const f of deleted) {
      const [pool, file] = f.split('/') as [string, string];
      if (!file.startsWith(`tabula-${pool}-`) || !/^tabula-[a-z]+-\d+\.(qcow2|qcow2\.tmp|console\.log)$/.test(file)) problems.push(`foreign file deleted: ${f}`);
      const owner = byName.get(file.replace(/\.(qcow2|qcow2\.tmp|console\.log)$/, ''));
      if (owner !== undefined && !(file.endsWith('.tmp') && owner.record.state !== 'cloning')) problems.push(`a live VM's file deleted: ${f}`);
    }

    const defined = p.steps.filter((s) => s.kind === 'define-vm');
    for (const d of defined) {
      if (byName.has(d.name)) problems.push(`define over an existing domain: ${d.name}`);
      if (g.observed.files.some((f) => f.file.startsWith(`${d.name}.`))) problems.push(`define over leftover files: ${d.name}`);
      const pool = g.desired.pools.find((q) => q.name === d.record.pool);
      if (!pool || !pool.canClone || g.now < pool.cloneNotBefore || d.record.slot >= pool.size) problems.push(`define not allowed: ${d.name}`);
    }
    const alreadyBooting = g.observed.vms.filter((v) => v.record.state === 'cloning' || v.record.state === 'booting').length;
    if (defined.length > 0 && alreadyBooting + defined.length > g.desired.maxParallelBoots) problems.push('more boots than maxParallelBoots');

    for (const s of p.steps) {
      if (s.kind === 'clone-disk' || s.kind === 'start-vm') {
        const pool = g.desired.pools.find((q) => q.name === byName.get(s.name)?.record.pool);
        if (!pool?.canClone) problems.push(`${s.kind} while the pool cannot clone: ${s.name}`);
      }
      if ((s.kind === 'destroy-vm' || s.kind === 'undefine-vm') && byName.get(s.name) === undefined) problems.push(`removing a VM that does not exist: ${s.name}`);
      if (s.kind === 'destroy-vm' && s.record.state !== 'dirty') problems.push(`destroy without dirty record: ${s.name}`);
      if (s.kind === 'destroy-vm' && !byName.get(s.name)?.active) problems.push(`destroying a stopped VM: ${s.name}`);
    }
    for (const v of g.observed.vms) {
      const pool = g.desired.pools.find((q) => q.name === v.record.pool);
      const unwanted = pool === undefined || v.record.slot >= pool.size;
      if (unwanted && v.active && v.record.state === 'in-use' && names.includes(v.name)) problems.push(`an in-use VM was cut short: ${v.name}`);
    }
    if (p.wakeAt !== undefined && p.wakeAt <= g.now && p.steps.length === 0) problems.push(`wakeAt ${p.wakeAt} is not in the future`);
    // Nothing that was ever handed out, or is dirty, may become clean: only a fresh boot does.
    for (const st of named) {
      const r = 'record' in st && st.kind !== 'undefine-vm' ? st.record : undefined;
      if (r?.state === 'clean' && byName.get(st.name)?.record.state !== 'booting') problems.push(`${st.name} made clean from ${byName.get(st.name)?.record.state}`);
      if (r?.state === 'clean' && r.session !== undefined) problems.push(`${st.name} clean with a session`);
    }

    if (problems.length > 0) {
      t.fail(`seed ${seed}: ${problems.join('; ')}`);
      return;
    }
    checked++;
  }
  t.equal(checked, 2000);
  // Otherwise the generator would be proving little.
  t.same([...seen].sort(), [
    'clone-disk',
    'define-vm',
    'delete-file',
    'destroy-vm:boot-timeout',
    'destroy-vm:dirty',
    'destroy-vm:handoff-abandoned',
    'destroy-vm:inconsistent',
    'destroy-vm:session-ended',
    'destroy-vm:unwanted',
    'mark-clean',
    'mark-connected',
    'start-vm',
    'undefine-vm:died',
    'undefine-vm:died-while-booting',
    'undefine-vm:dirty',
    'undefine-vm:session-ended',
    'undefine-vm:unwanted',
  ]);
});

t.test('replaying the outcome of each plan converges on a full, clean pool', async (t) => {
  // A crude simulation of the executor, to check that plans lead somewhere.
  const pools = [spec({ size: 3 }), spec({ name: 'lab', size: 2 })];
  let vms: ObservedVm[] = [vm(7, 'clean', { pool: 'gone' }), vm(1, 'booting', { active: false })];
  let fs: PoolFile[] = files('desk', 'tabula-desk-4.qcow2', 'tabula-desk-1.qcow2', 'readme.txt');
  let now = NOW;
  for (let round = 0; round < 30; round++) {
    const p = plan({ vms, files: fs }, { pools, maxParallelBoots: 2, handoffTimeoutMs: HANDOFF_MS }, now);
    for (const s of p.steps) {
      switch (s.kind) {
        case 'define-vm':
          vms.push({ name: s.name, uuid: s.name, active: false, agentConnected: false, record: s.record });
          break;
        case 'clone-disk':
          fs.push({ pool: s.pool, file: `${s.name}.qcow2` });
          break;
        case 'start-vm':
          vms = vms.map((v) => (v.name === s.name ? { ...v, active: true, agentConnected: true, record: s.record } : v));
          break;
        case 'mark-clean':
          vms = vms.map((v) => (v.name === s.name ? { ...v, record: s.record } : v));
          break;
        case 'destroy-vm':
          vms = vms.map((v) => (v.name === s.name ? { ...v, active: false, record: s.record } : v));
          break;
        case 'undefine-vm':
          vms = vms.filter((v) => v.name !== s.name);
          break;
        case 'delete-file':
          fs = fs.filter((f) => !(f.pool === s.pool && f.file === s.file));
          break;
      }
    }
    now += 1000;
  }
  t.same(
    vms.map((v) => `${v.name} ${v.record.state} ${v.active}`).sort(),
    ['tabula-desk-0 clean true', 'tabula-desk-1 clean true', 'tabula-desk-2 clean true', 'tabula-lab-0 clean true', 'tabula-lab-1 clean true'],
  );
  t.same(fs.map((f) => f.file).sort(), ['readme.txt', 'tabula-desk-0.qcow2', 'tabula-desk-1.qcow2', 'tabula-desk-2.qcow2', 'tabula-lab-0.qcow2', 'tabula-lab-1.qcow2']);
});

t.test('session limits: idle input ends a v1 session, the time limit any session; both recorded as the end reason', async (t) => {
  const limits = { idleTimeoutMs: 300_000, maxSessionMs: 3_600_000, warnBeforeMs: 60_000 };
  const v1 = (connectedAgo: number, inputAgo?: number) =>
    ({
      ...vm(0, 'in-use', { client: true, record: { session: { ...session(connectedAgo + 1000, NOW - connectedAgo), protocol: 'v1' as const } } }),
      ...(inputAgo === undefined ? {} : { lastInputAt: NOW - inputAgo }),
    }) as ObservedVm;
  const d = desired([spec({ size: 1, limits })]);

  const idle = plan(observed([v1(600_000, 300_000)]), d, NOW);
  t.match(idle.steps, [{ kind: 'destroy-vm', reason: 'idle', record: { state: 'dirty', session: { endedAt: NOW, endReason: 'idle' } } }], 'no input for idle_timeout');

  const busy = plan(observed([v1(600_000, 10_000)]), d, NOW);
  t.same(busy, { steps: [], wakeAt: NOW - 10_000 + 300_000 }, 'recent input: the plan wakes when it would turn idle');

  const fresh = plan(observed([v1(1_000)]), d, NOW);
  t.same(fresh, { steps: [], wakeAt: NOW - 1_000 + 300_000 }, 'idle counts from the connection when no input was reported');

  const long = plan(observed([v1(3_600_000, 1_000)]), d, NOW);
  t.match(long.steps, [{ kind: 'destroy-vm', reason: 'time-limit', record: { session: { endReason: 'time-limit' } } }], 'a busy session still ends at max_session');

  const v0 = vm(0, 'in-use', { client: true, record: { session: session(3_000_000, NOW - 3_000_000) } });
  t.same(plan(observed([v0]), d, NOW), { steps: [], wakeAt: NOW - 3_000_000 + 3_600_000 }, 'v0 reports no input: only the time limit applies');

  const off = desired([spec({ size: 1, limits: NO_LIMITS })]);
  t.same(plan(observed([v1(90_000_000, 90_000_000)]), off, NOW), { steps: [] }, 'limits of 0 are off');
});

t.test('memory: no VM is defined that would take the host under its reserve; clones not yet started count', async (t) => {
  const d = (budget: number) => ({ ...desired([spec({ size: 3 })], 3), memoryBudgetMiB: budget });
  t.same(plan(observed([]), d(1100), NOW).steps.map((s) => s.kind), ['define-vm', 'define-vm'], 'room for two of 512 MiB');
  t.same(plan(observed([]), d(500), NOW).steps, [], 'no room: nothing defined');
  const cloning = vm(0, 'cloning', { active: false });
  t.same(plan(observed([cloning]), d(1100), NOW).steps.filter((s) => s.kind === 'define-vm').length, 1, 'a clone about to start takes its share');
  t.same(plan(observed([vm(0, 'booting')]), d(1100), NOW).steps.filter((s) => s.kind === 'define-vm').length, 1, 'so does one still booting');
  t.same(plan(observed([]), { ...desired([spec({ size: 3 })], 3) }, NOW).steps.length, 3, 'no budget measured: no limit');
});

t.test('a drained pool plans no new clone, and finishes what is under way', async (t) => {
  t.same(plan(observed(), desired([spec({ drained: true })]), NOW).steps, [], 'an empty drained pool stays empty');
  t.same(kinds(plan(observed(), desired([spec({ drained: false })]), NOW).steps), ['define-vm tabula-desk-0', 'define-vm tabula-desk-1'], 'undrained, the same pool is filled');
  t.same(kinds(plan(observed([vm(0, 'cloning')]), desired([spec({ drained: true })]), NOW).steps), ['clone-disk tabula-desk-0'], 'a clone begun before the drain is finished, but slot 1 gets none');
  t.same(kinds(plan(observed([vm(0, 'clean'), vm(1, 'dirty')]), desired([spec({ drained: true })]), NOW).steps), ['destroy-vm tabula-desk-1'], 'a used VM still goes, and its slot stays empty');
});
