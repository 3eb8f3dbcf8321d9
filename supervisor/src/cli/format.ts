/** A VM as tabulactl shows it (the D-Bus Vm object's properties). */
export interface VmView {
  readonly name: string;
  readonly uuid: string;
  readonly pool: string;
  readonly slot: number;
  readonly state: string;
  readonly active: boolean;
  readonly stateSince: number;
  readonly spicePort?: number;
}

import type { PoolTimeouts } from '../domain/pool-timeouts.js';

/** A pool as tabulactl shows it (the D-Bus Pool object's properties). */
export interface PoolView {
  readonly name: string;
  readonly size: number;
  readonly healthy: boolean;
  readonly healthReason: string;
  readonly drained: boolean;
  readonly counts: Readonly<Record<string, number>>;
  /** Seconds, by config key; absent from a supervisor that does not tell them. */
  readonly timeouts?: PoolTimeouts;
  readonly vms: readonly VmView[];
}

/** A session under way (the D-Bus Session object's properties); times in ms since the epoch. */
export interface SessionRow {
  readonly id: string;
  /** The station's name, or its address when it gave none. */
  readonly station: string;
  readonly address: string;
  readonly pool: string;
  readonly vm: string;
  readonly protocol: string;
  readonly startedAt: number;
  readonly connectedAt?: number;
  readonly lastActivity: number;
}

/** What tabulactl status shows: the D-Bus properties, shaped like the supervisor's status. */
export interface StatusView {
  readonly version: string;
  readonly state: string;
  readonly reason: string;
  readonly line: string;
  readonly pools: readonly PoolView[];
  readonly sessions: readonly SessionRow[];
}

const STATES = ['clean', 'booting', 'cloning', 'in-use', 'dirty'];

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

export function formatPools(pools: readonly PoolView[]): string {
  if (pools.length === 0) return 'no pools configured\n';
  return table([
    ['POOL', 'SIZE', ...STATES.map((x) => x.toUpperCase()), 'SERVING', 'HEALTH'],
    ...pools.map((p) => [p.name, String(p.size), ...STATES.map((x) => String(p.counts[x] ?? 0)), p.drained ? 'DRAINED' : 'yes', p.healthy ? 'ok' : `UNHEALTHY: ${p.healthReason}`]),
  ]);
}

export function formatVms(vms: readonly VmView[], now: number): string {
  if (vms.length === 0) return 'no VMs\n';
  return table([
    ['VM', 'POOL', 'SLOT', 'STATE', 'FOR', 'RUNNING', 'SPICE', 'UUID'],
    ...vms.map((vm) => [vm.name, vm.pool, String(vm.slot), vm.state, age(now - vm.stateSince), vm.active ? 'yes' : 'no', vm.spicePort ? String(vm.spicePort) : '-', vm.uuid]),
  ]);
}

/** Sessions under way: who, where, for how long, and how long since the last sign of life. */
export function formatLiveSessions(sessions: readonly SessionRow[], now: number): string {
  if (sessions.length === 0) return 'no sessions under way\n';
  return table([
    ['SESSION', 'STATION', 'POOL', 'VM', 'FOR', 'IDLE', 'CONNECTED'],
    ...sessions.map((s) => [
      s.id,
      s.station === s.address ? s.address : `${s.station} (${s.address})`,
      s.pool,
      s.vm,
      age(now - s.startedAt),
      age(now - s.lastActivity),
      s.connectedAt === undefined ? 'not yet' : 'yes',
    ]),
  ]);
}

export function formatStatus(s: StatusView, now: number): string {
  let out = `Tabula supervisor ${s.version}: ${s.state}${s.reason ? ` (${s.reason})` : ''}\n\n`;
  out += formatPools(s.pools);
  const vms = s.pools.flatMap((p) => p.vms);
  if (vms.length > 0) out += '\n' + formatVms(vms, now);
  if (s.sessions.length > 0) out += '\n' + formatLiveSessions(s.sessions, now);
  return out;
}
