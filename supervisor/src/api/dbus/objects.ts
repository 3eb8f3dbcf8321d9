import dbus from 'dbus-next';
import { isTabulaError, TabulaError } from '../../domain/errors.js';
import type { SessionLogEntry } from '../../domain/session-log.js';
import type { StationView } from '../../domain/station-lan.js';
import { errorName, POOL_IFACE, ROOT_IFACE, VM_IFACE } from './names.js';

const { Interface, ACCESS_READ } = dbus.interface;

type Values = Record<string, unknown>;

/**
 * An exported interface whose properties are a plain snapshot. `update`
 * emits PropertiesChanged for the properties whose value really changed.
 */
abstract class SnapshotInterface extends Interface {
  protected values: Values = {};

  update(next: Values): void {
    const changed: Values = {};
    for (const [k, v] of Object.entries(next)) if (fingerprint(v) !== fingerprint(this.values[k])) changed[k] = v;
    this.values = { ...this.values, ...next };
    if (Object.keys(changed).length > 0) Interface.emitPropertiesChanged(this, changed, []);
  }
}

function fingerprint(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
}

function readOnly(props: Record<string, string>): Record<string, dbus.interface.PropertyOptions> {
  return Object.fromEntries(Object.entries(props).map(([k, signature]) => [k, { signature, access: ACCESS_READ }]));
}

function defineGetters(cls: { prototype: object }, names: string[]): void {
  for (const name of names) {
    Object.defineProperty(cls.prototype, name, {
      get(this: { values: Values }) {
        return this.values[name];
      },
    });
  }
}

/** Runs an admin action, turning TabulaError into a D-Bus error with a code. */
export async function guarded<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (e) {
    if (isTabulaError(e)) throw new dbus.DBusError(errorName(e.code), e.message);
    throw new dbus.DBusError(errorName('internal'), e instanceof Error ? e.message : String(e));
  }
}

export interface RootActions {
  recycleVm(name: string): Promise<void>;
  listSessions(since: number): Promise<SessionLogEntry[]>;
  /** Removes every VM, disk and session Tabula has; the pools are then rebuilt. */
  wipe(): Promise<{ domains: number; files: number; sessions: number }>;
  /** Stations with a current DHCP lease (none when the supervisor serves no DHCP). */
  listStations(): Promise<StationView[]>;
  /** The VMs' whitelist; absent without a VM network (the methods then answer NotFound). */
  readonly whitelist?: {
    list(): string[];
    set(entries: string[]): Promise<string[]>;
    add(entry: string): Promise<string[]>;
    remove(entry: string): Promise<string[]>;
  };
}

/** A session log entry as a{sv}: absent values are absent keys; times in ms since the epoch. */
function sessionDict(e: SessionLogEntry): Record<string, dbus.Variant> {
  const out: Record<string, dbus.Variant> = {};
  const str = (k: string, v: string | undefined) => v !== undefined && (out[k] = new dbus.Variant('s', v));
  const time = (k: string, v: number | undefined) => v !== undefined && (out[k] = new dbus.Variant('t', BigInt(Math.max(0, Math.round(v)))));
  str('Session', e.session);
  str('StationAddress', e.station.address);
  str('StationMac', e.station.mac);
  str('StationName', e.station.name);
  str('Pool', e.pool);
  str('Vm', e.vm);
  str('Protocol', e.protocol);
  time('RequestedAt', e.requestedAt);
  time('HandedAt', e.handedAt);
  time('ConnectedAt', e.connectedAt);
  time('EndedAt', e.endedAt);
  str('Reason', e.reason);
  return out;
}

const ROOT_PROPS = { Version: 's', State: 's', StateReason: 's', Status: 's', Pools: 'ao' };

export class RootObject extends SnapshotInterface {
  readonly #actions: RootActions;
  constructor(actions: RootActions) {
    super(ROOT_IFACE);
    this.#actions = actions;
  }
  RecycleVm(name: string): Promise<void> {
    return guarded(() => this.#actions.recycleVm(name));
  }
  ListSessions(since: bigint): Promise<Array<Record<string, dbus.Variant>>> {
    return guarded(async () => (await this.#actions.listSessions(Number(since))).map(sessionDict));
  }
  Wipe(): Promise<[number, number, number]> {
    return guarded(async () => {
      const r = await this.#actions.wipe();
      return [r.domains, r.files, r.sessions];
    });
  }
  ListStations(): Promise<Array<Record<string, dbus.Variant>>> {
    return guarded(async () =>
      (await this.#actions.listStations()).map((st) => ({
        Address: new dbus.Variant('s', st.address),
        Mac: new dbus.Variant('s', st.mac),
        ...(st.name === undefined ? {} : { Name: new dbus.Variant('s', st.name) }),
        LastSeen: new dbus.Variant('t', BigInt(Math.max(0, Math.round(st.lastSeen)))),
        ...(Number.isFinite(st.leaseExpires) ? { LeaseExpires: new dbus.Variant('t', BigInt(Math.round(st.leaseExpires))) } : {}),
      })),
    );
  }
  ListWhitelist(): Promise<string[]> {
    return guarded(async () => this.#whitelist().list());
  }
  SetWhitelist(entries: string[]): Promise<string[]> {
    return guarded(() => this.#whitelist().set(entries));
  }
  AddToWhitelist(entry: string): Promise<string[]> {
    return guarded(() => this.#whitelist().add(entry));
  }
  RemoveFromWhitelist(entry: string): Promise<string[]> {
    return guarded(() => this.#whitelist().remove(entry));
  }
  #whitelist(): NonNullable<RootActions['whitelist']> {
    if (!this.#actions.whitelist) throw new TabulaError('not-found', 'no VM network is configured ([vm_network]), so there is no whitelist');
    return this.#actions.whitelist;
  }
}
defineGetters(RootObject, Object.keys(ROOT_PROPS));
RootObject.configureMembers({
  properties: readOnly(ROOT_PROPS),
  methods: {
    RecycleVm: { inSignature: 's', outSignature: '' },
    ListSessions: { inSignature: 't', outSignature: 'aa{sv}' },
    Wipe: { inSignature: '', outSignature: 'uuu' },
    ListStations: { inSignature: '', outSignature: 'aa{sv}' },
    ListWhitelist: { inSignature: '', outSignature: 'as' },
    SetWhitelist: { inSignature: 'as', outSignature: 'as' },
    AddToWhitelist: { inSignature: 's', outSignature: 'as' },
    RemoveFromWhitelist: { inSignature: 's', outSignature: 'as' },
  },
});

const POOL_PROPS = { Name: 's', Size: 'u', Healthy: 'b', HealthReason: 's', Counts: 'a{su}', Vms: 'ao' };

export class PoolObject extends SnapshotInterface {
  constructor() {
    super(POOL_IFACE);
  }
}
defineGetters(PoolObject, Object.keys(POOL_PROPS));
PoolObject.configureMembers({ properties: readOnly(POOL_PROPS) });

const VM_PROPS = { Name: 's', Uuid: 's', Pool: 's', Slot: 'u', State: 's', Active: 'b', StateSince: 't', SpicePort: 'q' };

export class VmObject extends SnapshotInterface {
  readonly #recycle: () => Promise<void>;
  constructor(recycle: () => Promise<void>) {
    super(VM_IFACE);
    this.#recycle = recycle;
  }
  Recycle(): Promise<void> {
    return guarded(() => this.#recycle());
  }
}
defineGetters(VmObject, Object.keys(VM_PROPS));
VmObject.configureMembers({ properties: readOnly(VM_PROPS), methods: { Recycle: { inSignature: '', outSignature: '' } } });
