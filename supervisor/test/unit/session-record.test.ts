// The session log is written from the VM's own record, by the step that takes
// the VM away, and before the record is gone with the domain.
import t from 'tap';
import { domainSpec, executeStep } from '../../src/app/executor.js';
import { KeyedLocks } from '../../src/app/keyed-locks.js';
import { parseConfig } from '../../src/config/config.js';
import { expectOf } from '../../src/domain/steps.js';
import { endedSession, type VmRecord } from '../../src/domain/vm.js';
import { renderDomainXml } from '../../src/render/domain-xml.js';
import { FakeDisks } from '../fakes/fake-disks.js';
import { FakeLibvirt } from '../fakes/fake-libvirt.js';
import { MemorySessionLog } from '../fakes/memory-session-log.js';

const T = 1_900_000_000_000;
const VM = 'tabula-desk-0';
const config = parseConfig('[[pool]]\nname = "desk"\ngolden_image = "/srv/g.qcow2"\nsize = 1\n', 'unit.toml');
const session = { id: 's-1', station: '169.254.24.10', protocol: 'v1' as const, handedAt: T + 1_000, connectedAt: T + 3_000, requestedAt: T, stationName: 'kiosk-1', stationMac: '52:54:00:12:34:56' };
const inUse: VmRecord = { pool: 'desk', slot: 0, state: 'in-use', createdAt: T - 60_000, stateSince: T + 1_000, session };

async function setup(record: VmRecord, active = true) {
  const libvirt = new FakeLibvirt();
  await libvirt.defineDomain(renderDomainXml(domainSpec(config, config.pools[0]!, VM, record, 'pw')));
  if (active) await libvirt.startDomain(VM);
  const log = new MemorySessionLog();
  const deps = { libvirt, disks: new FakeDisks(), newSecret: () => 'x', sessionLog: log };
  const ctx = (now: number) => ({ config, locks: new KeyedLocks(), goldenFormat: () => 'qcow2', now });
  return { libvirt, log, deps, ctx };
}

t.test('a session ended by a limit: destroy-vm logs who, when and why, once', async (t) => {
  const h = await setup(inUse);
  const record = endedSession(inUse, T + 60_000, 'idle');
  await executeStep({ kind: 'destroy-vm', name: VM, record, reason: 'idle', expect: expectOf(inUse) }, h.ctx(T + 60_500), h.deps);
  t.same(h.log.entries, [
    {
      session: 's-1',
      station: { address: '169.254.24.10', mac: '52:54:00:12:34:56', name: 'kiosk-1' },
      pool: 'desk',
      vm: VM,
      protocol: 'v1',
      requestedAt: T,
      handedAt: T + 1_000,
      connectedAt: T + 3_000,
      endedAt: T + 60_000,
      reason: 'idle',
    },
  ]);
  // The undefine that follows (a crash may have come in between) offers it again: still once.
  await executeStep({ kind: 'undefine-vm', name: VM, pool: 'desk', reason: 'dirty', expect: expectOf(record), record }, h.ctx(T + 61_000), h.deps);
  t.equal(h.log.entries.length, 1);
  t.equal(h.libvirt.domain(VM), undefined, 'the domain is gone');
});

t.test('a guest that stopped by itself: undefine-vm logs "shutdown" at the time it is noticed', async (t) => {
  const h = await setup(inUse, false);
  await executeStep({ kind: 'undefine-vm', name: VM, pool: 'desk', reason: 'session-ended', expect: expectOf(inUse), record: inUse, session: 's-1' }, h.ctx(T + 90_000), h.deps);
  t.match(h.log.entries, [{ session: 's-1', reason: 'shutdown', endedAt: T + 90_000 }]);
});

t.test('a log that cannot be written keeps the domain, and so the record, for the next round', async (t) => {
  const h = await setup(inUse, false);
  h.log.failing = true;
  await t.rejects(executeStep({ kind: 'undefine-vm', name: VM, pool: 'desk', reason: 'session-ended', expect: expectOf(inUse), record: inUse }, h.ctx(T), h.deps), { code: 'disk-failed' });
  t.ok(h.libvirt.domain(VM), 'still defined: nothing lost');
  h.log.failing = false;
  await executeStep({ kind: 'undefine-vm', name: VM, pool: 'desk', reason: 'session-ended', expect: expectOf(inUse), record: inUse }, h.ctx(T), h.deps);
  t.equal(h.log.entries.length, 1, 'logged once the log works again');
});
