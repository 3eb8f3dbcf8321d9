import dbus from 'dbus-next';
import { call, type Bus } from '../adapters/dbus/call.js';
import { BUS_NAME, codeOfErrorName, POOL_IFACE, poolPath, ROOT_IFACE, ROOT_PATH, SESSION_IFACE, VM_IFACE } from '../api/dbus/names.js';
import { timeoutsOfProps } from '../api/dbus/timeouts.js';
import type { ErrorCode } from '../domain/errors.js';
import type { SessionLogEntry } from '../domain/session-log.js';
import type { PoolView, SessionRow, StatusView, VmView } from './format.js';

const READ_TIMEOUT_MS = 10_000;
/** An admin call may wait for polkit (which may ask a person) and for the reconciler's lane. */
export const ADMIN_TIMEOUT_MS = 30_000;

/** D-Bus error names → TabulaError codes (and so exit codes). */
export function translate(name: string, text: string): ErrorCode {
  if (name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner') return 'bus-unavailable';
  if (name === 'org.freedesktop.DBus.Error.AccessDenied') return 'access-denied';
  const ours = codeOfErrorName(name);
  if (ours !== undefined) return ours as ErrorCode;
  return /not.*found/i.test(text) ? 'not-found' : 'internal';
}

/** Variants unwrapped and 64-bit numbers made plain numbers. */
function unwrap(v: unknown): unknown {
  if (v instanceof dbus.Variant) return unwrap(v.value);
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  return v;
}

type Props = Record<string, unknown>;

/** tabulactl's side of org.tabula.Supervisor1: every call with its signature and a timeout. */
export class SupervisorClient {
  readonly #bus: Bus;

  constructor(bus: Bus) {
    this.#bus = bus;
  }

  async #call(path: string, iface: string, member: string, signature = '', body: unknown[] = [], timeoutMs = READ_TIMEOUT_MS): Promise<unknown[]> {
    return call(this.#bus, { destination: BUS_NAME, path, interface: iface, member, ...(signature ? { signature, body } : {}) }, timeoutMs, translate);
  }

  async #props(path: string, iface: string): Promise<Props> {
    const [props] = await this.#call(path, 'org.freedesktop.DBus.Properties', 'GetAll', 's', [iface]);
    return unwrap(props) as Props;
  }

  /** A method of the root object. */
  async root(member: string, signature = '', body: unknown[] = [], timeoutMs = READ_TIMEOUT_MS): Promise<unknown[]> {
    return (await this.#call(ROOT_PATH, ROOT_IFACE, member, signature, body, timeoutMs)).map(unwrap);
  }

  /** A method of a pool's object (an unknown pool answers NotFound). */
  async pool(name: string, member: string, signature = '', body: unknown[] = []): Promise<void> {
    await this.#call(poolPath(name), POOL_IFACE, member, signature, body, ADMIN_TIMEOUT_MS);
  }

  async status(): Promise<StatusView> {
    const root = await this.#props(ROOT_PATH, ROOT_IFACE);
    const pools = await Promise.all((root['Pools'] as string[]).map((path) => this.#pool(path)));
    const sessions = await Promise.all(((root['Sessions'] as string[] | undefined) ?? []).map((path) => this.#session(path)));
    return {
      version: root['Version'] as string,
      state: root['State'] as string,
      reason: root['StateReason'] as string,
      line: root['Status'] as string,
      pools,
      sessions: sessions.flatMap((s) => (s === undefined ? [] : [s])),
    };
  }

  async #pool(path: string): Promise<PoolView> {
    const p = await this.#props(path, POOL_IFACE);
    const vms = await Promise.all((p['Vms'] as string[]).map((vmPath) => this.#props(vmPath, VM_IFACE)));
    const timeouts = timeoutsOfProps(p);
    return {
      name: p['Name'] as string,
      size: p['Size'] as number,
      healthy: p['Healthy'] as boolean,
      healthReason: p['HealthReason'] as string,
      drained: p['Drained'] === true,
      counts: p['Counts'] as Record<string, number>,
      ...(timeouts === undefined ? {} : { timeouts }),
      vms: vms.map(
        (vm): VmView => ({
          name: vm['Name'] as string,
          uuid: vm['Uuid'] as string,
          pool: vm['Pool'] as string,
          slot: vm['Slot'] as number,
          state: vm['State'] as string,
          active: vm['Active'] as boolean,
          stateSince: vm['StateSince'] as number,
          ...((vm['SpicePort'] as number) > 0 ? { spicePort: vm['SpicePort'] as number } : {}),
        }),
      ),
    };
  }

  /** A session object; undefined when it ended between the listing and the read. */
  async #session(path: string): Promise<SessionRow | undefined> {
    let s: Props;
    try {
      s = await this.#props(path, SESSION_IFACE);
    } catch {
      return undefined;
    }
    const connectedAt = s['ConnectedAt'] as number;
    return {
      id: s['Id'] as string,
      station: s['Station'] as string,
      address: s['RemoteAddress'] as string,
      pool: s['Pool'] as string,
      vm: s['Vm'] as string,
      protocol: s['Protocol'] as string,
      startedAt: s['StartedAt'] as number,
      ...(connectedAt > 0 ? { connectedAt } : {}),
      lastActivity: s['LastActivity'] as number,
    };
  }

  async sessionLog(since: number): Promise<SessionLogEntry[]> {
    const [list] = await this.root('ListSessions', 't', [BigInt(Math.max(0, since))]);
    return (list as Props[]).map((d) => {
      const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
      const num = (k: string) => (typeof d[k] === 'number' ? (d[k] as number) : undefined);
      const opt = <T>(k: string, v: T | undefined) => (v === undefined ? {} : { [k]: v });
      return {
        session: str('Session') ?? '',
        station: { address: str('StationAddress') ?? '', ...opt('mac', str('StationMac')), ...opt('name', str('StationName')) },
        pool: str('Pool') ?? '',
        vm: str('Vm') ?? '',
        protocol: str('Protocol') === 'v1' ? 'v1' : 'v0',
        ...opt('requestedAt', num('RequestedAt')),
        handedAt: num('HandedAt') ?? 0,
        ...opt('connectedAt', num('ConnectedAt')),
        endedAt: num('EndedAt') ?? 0,
        reason: str('Reason') ?? '',
      };
    });
  }

  async stations(): Promise<Array<{ address: string; mac: string; name?: string; lastSeen: number }>> {
    const [list] = await this.root('ListStations');
    return (list as Props[]).map((d) => ({
      address: d['Address'] as string,
      mac: d['Mac'] as string,
      ...(d['Name'] === undefined ? {} : { name: d['Name'] as string }),
      lastSeen: d['LastSeen'] as number,
    }));
  }
}
