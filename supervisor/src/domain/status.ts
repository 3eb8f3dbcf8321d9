import type { HealthVerdict } from './health.js';
import type { PoolTimeouts } from './pool-timeouts.js';
import { VM_STATES, type ObservedVm, type VmState } from './vm.js';

/** A visitor's session under way on an in-use VM, as staff see it. */
export interface LiveSession {
  readonly id: string;
  /** The station's address on the station LAN. */
  readonly station: string;
  /** The name the station gave (v1 HELLO), when it gave one. */
  readonly stationName?: string;
  readonly protocol: 'v0' | 'v1';
  /** The hand-off (ms since the epoch). */
  readonly handedAt: number;
  /** When the station's Spice client was first on the console. */
  readonly connectedAt?: number;
  /** The last keyboard or mouse input the station reported (v1 only). */
  readonly lastInputAt?: number;
}

export interface VmStatus {
  readonly name: string;
  readonly uuid: string;
  readonly pool: string;
  readonly slot: number;
  readonly state: VmState;
  readonly active: boolean;
  readonly stateSince: number;
  readonly spicePort?: number;
  /** Only on in-use VMs. */
  readonly session?: LiveSession;
  /** The golden image its disk is backed by, when recorded. */
  readonly golden?: string;
}

/** Which golden image a pool clones from, and what a rollback would go back to. */
export interface PoolImageStatus {
  readonly goldenImage: string;
  readonly previousGoldenImage?: string;
  /** False while a switch is on probation: failing clones of the new image roll it back. */
  readonly goldenConfirmed: boolean;
  /** Why the golden image cannot be cloned from (missing, unreadable, not a disk); absent when it can. */
  readonly problem?: string;
  /** The kernel new clones boot directly (the pool's, or the image's own); absent when they boot from their disk. */
  readonly kernel?: string;
}

export interface PoolStatus {
  readonly name: string;
  readonly size: number;
  readonly counts: Readonly<Record<VmState, number>>;
  readonly healthy: boolean;
  readonly healthReason: string;
  /** Drained by staff: it hands out nothing and is not refilled. */
  readonly drained: boolean;
  readonly vms: readonly VmStatus[];
  readonly image?: PoolImageStatus;
  /** The timeouts in force (seconds), the file's or staff's. */
  readonly timeouts?: PoolTimeouts;
}

export function emptyCounts(): Record<VmState, number> {
  return Object.fromEntries(VM_STATES.map((s) => [s, 0])) as Record<VmState, number>;
}

export function poolStatus(name: string, size: number, vms: readonly ObservedVm[], health: HealthVerdict, drained = false, image?: PoolImageStatus): PoolStatus {
  const mine = vms.filter((vm) => vm.record.pool === name).sort((a, b) => a.record.slot - b.record.slot);
  const counts = emptyCounts();
  for (const vm of mine) counts[vm.record.state]++;
  return {
    name,
    size,
    counts,
    healthy: health.healthy,
    healthReason: health.reason,
    drained,
    ...(image === undefined ? {} : { image }),
    vms: mine.map((vm) => ({
      name: vm.name,
      uuid: vm.uuid,
      pool: vm.record.pool,
      slot: vm.record.slot,
      state: vm.record.state,
      active: vm.active,
      stateSince: vm.record.stateSince,
      ...(vm.spicePort === undefined ? {} : { spicePort: vm.spicePort }),
      ...(vm.record.golden === undefined ? {} : { golden: vm.record.golden }),
      ...liveSessionOf(vm),
    })),
  };
}

function liveSessionOf(vm: ObservedVm): { session?: LiveSession } {
  const s = vm.record.session;
  if (vm.record.state !== 'in-use' || s === undefined) return {};
  return {
    session: {
      id: s.id,
      station: s.station,
      ...(s.stationName === undefined ? {} : { stationName: s.stationName }),
      protocol: s.protocol,
      handedAt: s.handedAt,
      ...(s.connectedAt === undefined ? {} : { connectedAt: s.connectedAt }),
      ...(vm.lastInputAt === undefined ? {} : { lastInputAt: vm.lastInputAt }),
    },
  };
}

/** A live session with where it runs: what the API and tabulactl list. */
export interface SessionView extends LiveSession {
  readonly pool: string;
  readonly vm: string;
}

/** Every session under way, oldest hand-off first. */
export function liveSessions(pools: readonly PoolStatus[]): SessionView[] {
  return pools
    .flatMap((p) => p.vms.flatMap((vm) => (vm.session === undefined ? [] : [{ ...vm.session, pool: p.name, vm: vm.name }])))
    .sort((a, b) => a.handedAt - b.handedAt || a.id.localeCompare(b.id));
}

/** The last sign of life of a session: input reported, else its connection, else its hand-off. */
export function lastActivity(s: LiveSession): number {
  return Math.max(s.handedAt, s.connectedAt ?? 0, s.lastInputAt ?? 0);
}

export interface HealthChange {
  readonly pool: string;
  readonly healthy: boolean;
  readonly reason: string;
}

/**
 * Pools whose health changed between two statuses: healthy flipped, or the
 * kind of trouble changed (the text before the first ':', since some reasons
 * carry figures that move every round, e.g. free memory). New pools are not
 * changes.
 */
export function healthChanges(before: readonly PoolStatus[], after: readonly PoolStatus[]): HealthChange[] {
  const kind = (reason: string) => reason.split(':')[0];
  const old = new Map(before.map((p) => [p.name, p]));
  return after.flatMap((p) => {
    const was = old.get(p.name);
    if (was === undefined) return [];
    const changed = was.healthy !== p.healthy || (!p.healthy && kind(was.healthReason) !== kind(p.healthReason));
    return changed ? [{ pool: p.name, healthy: p.healthy, reason: p.healthReason }] : [];
  });
}

/** One line for systemd's STATUS= and logs: "desktop: 3/4 clean, 1 booting". */
export function statusLine(pools: readonly PoolStatus[]): string {
  if (pools.length === 0) return 'no pools configured';
  return pools
    .map((p) => {
      const parts = [`${p.counts.clean}/${p.size} clean`];
      if (p.drained) parts.push('DRAINED');
      for (const s of VM_STATES) if (s !== 'clean' && p.counts[s] > 0) parts.push(`${p.counts[s]} ${s}`);
      if (!p.healthy) parts.push(`UNHEALTHY: ${p.healthReason}`);
      return `${p.name}: ${parts.join(', ')}`;
    })
    .join('; ');
}
