import type { HealthVerdict } from './health.js';
import { VM_STATES, type ObservedVm, type VmState } from './vm.js';

export interface VmStatus {
  readonly name: string;
  readonly uuid: string;
  readonly pool: string;
  readonly slot: number;
  readonly state: VmState;
  readonly active: boolean;
  readonly stateSince: number;
  readonly spicePort?: number;
}

export interface PoolStatus {
  readonly name: string;
  readonly size: number;
  readonly counts: Readonly<Record<VmState, number>>;
  readonly healthy: boolean;
  readonly healthReason: string;
  readonly vms: readonly VmStatus[];
}

export function emptyCounts(): Record<VmState, number> {
  return Object.fromEntries(VM_STATES.map((s) => [s, 0])) as Record<VmState, number>;
}

export function poolStatus(name: string, size: number, vms: readonly ObservedVm[], health: HealthVerdict): PoolStatus {
  const mine = vms.filter((vm) => vm.record.pool === name).sort((a, b) => a.record.slot - b.record.slot);
  const counts = emptyCounts();
  for (const vm of mine) counts[vm.record.state]++;
  return {
    name,
    size,
    counts,
    healthy: health.healthy,
    healthReason: health.reason,
    vms: mine.map((vm) => ({
      name: vm.name,
      uuid: vm.uuid,
      pool: vm.record.pool,
      slot: vm.record.slot,
      state: vm.record.state,
      active: vm.active,
      stateSince: vm.record.stateSince,
      ...(vm.spicePort === undefined ? {} : { spicePort: vm.spicePort }),
    })),
  };
}

/** One line for systemd's STATUS= and logs: "desktop: 3/4 clean, 1 booting". */
export function statusLine(pools: readonly PoolStatus[]): string {
  if (pools.length === 0) return 'no pools configured';
  return pools
    .map((p) => {
      const parts = [`${p.counts.clean}/${p.size} clean`];
      for (const s of VM_STATES) if (s !== 'clean' && p.counts[s] > 0) parts.push(`${p.counts[s]} ${s}`);
      if (!p.healthy) parts.push(`UNHEALTHY: ${p.healthReason}`);
      return `${p.name}: ${parts.join(', ')}`;
    })
    .join('; ');
}
