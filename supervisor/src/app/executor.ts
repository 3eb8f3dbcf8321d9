import type { Config, PoolConfig } from '../config/config.js';
import { TabulaError } from '../domain/errors.js';
import { vmFiles } from '../domain/pool.js';
import { logEntryOf } from '../domain/session-log.js';
import { endCauseOf, matches, type Step } from '../domain/steps.js';
import { renderDomainXml, type DomainSpec } from '../render/domain-xml.js';
import type { VmRecord } from '../domain/vm.js';
import type { Disks } from '../ports/disks.js';
import type { Libvirt } from '../ports/libvirt.js';
import type { NewSecret } from '../ports/secrets.js';
import type { SessionLog } from '../ports/session-log.js';
import { NO_FAULTS, type Faults } from '../ports/faults.js';
import type { KeyedLocks } from './keyed-locks.js';

export interface ExecutorDeps {
  readonly libvirt: Libvirt;
  readonly disks: Disks;
  readonly newSecret: NewSecret;
  /** Where the session of each VM that goes away is recorded. */
  readonly sessionLog?: SessionLog;
  /** Crash-safety tests end the process between side effects. */
  readonly faults?: Faults;
}

export interface ExecutionContext {
  readonly config: Config;
  readonly locks: KeyedLocks;
  /** The format of each pool's golden image, as inspected. */
  readonly goldenFormat: (pool: string) => string | undefined;
  /** When the step runs: the end of a session whose VM stopped by itself. */
  readonly now: number;
}

/**
 * Carries out one step. A step on an existing VM runs under that VM's lock and
 * only if its record is still the one it was planned against; otherwise it
 * throws `conflict` and the next round plans again.
 */
export async function executeStep(step: Step, ctx: ExecutionContext, deps: ExecutorDeps): Promise<void> {
  if (!('expect' in step)) return carryOut(step, ctx, deps);
  await ctx.locks.run(step.name, async () => {
    const current = await deps.libvirt.getDomain(step.name);
    if (!matches(step.expect, current?.record)) {
      throw new TabulaError('conflict', `${step.name} changed since it was observed (now ${current?.record?.state ?? 'gone'})`);
    }
    await carryOut(step, ctx, deps);
  });
}

async function carryOut(step: Step, ctx: ExecutionContext, deps: ExecutorDeps): Promise<void> {
  const faults = deps.faults ?? NO_FAULTS;
  faults.at(`before:${step.kind}`);
  await sideEffects(step, ctx, deps, () => faults.at(`mid:${step.kind}`));
  faults.at(`after:${step.kind}`);
}

/** `mid` runs between the two side effects of the steps that have two. */
async function sideEffects(step: Step, ctx: ExecutionContext, deps: ExecutorDeps, mid: () => void): Promise<void> {
  const { libvirt, disks } = deps;
  switch (step.kind) {
    case 'define-vm': {
      const pool = poolOf(ctx.config, step.record.pool);
      await disks.ensureDir(pool.storageDir);
      await libvirt.defineDomain(renderDomainXml(domainSpec(ctx.config, pool, step.name, step.record, deps.newSecret())));
      return;
    }
    case 'clone-disk': {
      const pool = poolOf(ctx.config, step.pool);
      const format = ctx.goldenFormat(pool.name);
      if (format === undefined) throw new TabulaError('golden-image-invalid', `golden image of pool ${pool.name} has not been checked`);
      await disks.createOverlay({ path: pool.goldenImage, format }, `${pool.storageDir}/${vmFiles(pool.name, step.slot).overlay}`);
      return;
    }
    case 'start-vm':
      await libvirt.setVmRecord(step.name, step.record);
      mid();
      await libvirt.startDomain(step.name);
      return;
    case 'mark-clean':
    case 'mark-connected':
      await libvirt.setVmRecord(step.name, step.record);
      return;
    case 'destroy-vm': {
      await libvirt.setVmRecord(step.name, step.record);
      mid();
      await libvirt.destroyDomain(step.name);
      // The dirty record still holds the session, so a crash before this line is caught up by the undefine.
      const s = step.record.session;
      if (s !== undefined) await deps.sessionLog?.append(logEntryOf(step.name, step.record.pool, s, ctx.now, endCauseOf(step.kind, step.reason)));
      return;
    }
    case 'undefine-vm': {
      // The last moment the session is known: the log entry is on disk before the record is gone.
      const s = step.record?.session;
      if (s !== undefined) await deps.sessionLog?.append(logEntryOf(step.name, step.pool, s, ctx.now, endCauseOf(step.kind, step.reason)));
      mid();
      await libvirt.undefineDomain(step.name);
      return;
    }
    case 'delete-file':
      await disks.remove(`${poolOf(ctx.config, step.pool).storageDir}/${step.file}`);
      return;
  }
}

/** Everything libvirt needs to know about a pool VM. */
export function domainSpec(config: Config, pool: PoolConfig, name: string, record: VmRecord, spicePassword: string): DomainSpec {
  const password = pool.consoleTickets ? { password: spicePassword } : {};
  const files = vmFiles(pool.name, record.slot);
  return {
    name,
    hypervisor: config.hypervisor,
    memoryMiB: pool.memoryMiB,
    vcpus: pool.vcpus,
    firmware: pool.firmware,
    video: pool.video,
    overlayPath: `${pool.storageDir}/${files.overlay}`,
    consoleLogPath: `${pool.storageDir}/${files.consoleLog}`,
    ...(pool.kernel === undefined ? {} : { kernel: pool.kernel }),
    ...(pool.initrd === undefined ? {} : { initrd: pool.initrd }),
    ...(pool.cmdline === undefined ? {} : { cmdline: pool.cmdline }),
    spice: { port: pool.spicePortBase + record.slot, listen: config.spiceListen, ...password },
    ...(config.vmNetwork ? { bridge: config.vmNetwork.bridge } : {}),
    record,
  };
}

function poolOf(config: Config, name: string): PoolConfig {
  const pool = config.pools.find((p) => p.name === name);
  if (!pool) throw new TabulaError('internal', `no pool named ${name} in the config`);
  return pool;
}
