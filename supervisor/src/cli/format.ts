/** What tabulactl shows: the D-Bus properties, shaped like the supervisor's status. */
export interface StatusView {
  readonly version: string;
  readonly state: string;
  readonly reason: string;
  readonly line: string;
  readonly pools: ReadonlyArray<{
    readonly name: string;
    readonly size: number;
    readonly healthy: boolean;
    readonly healthReason: string;
    readonly counts: Readonly<Record<string, number>>;
    readonly vms: ReadonlyArray<{
      readonly name: string;
      readonly uuid: string;
      readonly pool: string;
      readonly slot: number;
      readonly state: string;
      readonly active: boolean;
      readonly stateSince: number;
      readonly spicePort?: number;
    }>;
  }>;
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

export function formatStatus(s: StatusView, now: number): string {
  let out = `Tabula supervisor ${s.version}: ${s.state}${s.reason ? ` (${s.reason})` : ''}\n\n`;
  out += table([
    ['POOL', 'SIZE', ...STATES.map((x) => x.toUpperCase()), 'HEALTH'],
    ...s.pools.map((p) => [p.name, String(p.size), ...STATES.map((x) => String(p.counts[x] ?? 0)), p.healthy ? 'ok' : `UNHEALTHY: ${p.healthReason}`]),
  ]);
  const vms = s.pools.flatMap((p) => p.vms);
  if (vms.length > 0) {
    out += '\n' + table([
      ['VM', 'POOL', 'SLOT', 'STATE', 'FOR', 'RUNNING', 'SPICE', 'UUID'],
      ...vms.map((vm) => [vm.name, vm.pool, String(vm.slot), vm.state, age(now - vm.stateSince), vm.active ? 'yes' : 'no', vm.spicePort ? String(vm.spicePort) : '-', vm.uuid]),
    ]);
  }
  return out;
}
