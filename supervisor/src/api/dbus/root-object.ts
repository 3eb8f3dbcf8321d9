import dbus from 'dbus-next';
import { TabulaError } from '../../domain/errors.js';
import type { SessionLogEntry } from '../../domain/session-log.js';
import type { StationView } from '../../domain/station-lan.js';
import type { ImageView } from '../../domain/golden-store.js';
import type { ImportedImage, ImportRequest } from '../../app/image-import.js';
import { imageDict, importedDict } from './images.js';
import { ActingInterface, defineGetters, guarded, readOnly } from './snapshot.js';

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
  endSession(id: string): Promise<void>;
  /** Re-reads the config file, as SIGHUP does; refused (ConfigInvalid) with the old config kept. */
  reloadConfig(): Promise<void>;
  factoryReset(keepImages: boolean, confirm: string): Promise<void>;
  /** The image store; absent where there is none (the methods then answer NotFound). */
  readonly images?: {
    list(): Promise<ImageView[]>;
    import(req: ImportRequest): Promise<ImportedImage>;
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

const ROOT_PROPS = { Version: 's', State: 's', StateReason: 's', Status: 's', Pools: 'ao', Sessions: 'ao' };

export class RootObject extends ActingInterface<RootActions> {
  RecycleVm(name: string): Promise<void> {
    return this.admin('manage', (a) => a.recycleVm(name));
  }
  ListSessions(since: bigint): Promise<Array<Record<string, dbus.Variant>>> {
    return guarded(async () => (await this.actions.listSessions(Number(since))).map(sessionDict));
  }
  Wipe(): Promise<[number, number, number]> {
    return this.admin('wipe', async (a) => {
      const r = await a.wipe();
      return [r.domains, r.files, r.sessions];
    });
  }
  ListStations(): Promise<Array<Record<string, dbus.Variant>>> {
    return guarded(async () =>
      (await this.actions.listStations()).map((st) => ({
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
    return this.admin('manage', () => this.#whitelist().set(entries));
  }
  AddToWhitelist(entry: string): Promise<string[]> {
    return this.admin('manage', () => this.#whitelist().add(entry));
  }
  RemoveFromWhitelist(entry: string): Promise<string[]> {
    return this.admin('manage', () => this.#whitelist().remove(entry));
  }
  EndSession(id: string): Promise<void> {
    return this.admin('manage', (a) => a.endSession(id));
  }
  ReloadConfig(): Promise<void> {
    return this.admin('manage', (a) => a.reloadConfig());
  }
  FactoryReset(keepImages: boolean, confirm: string): Promise<void> {
    return this.admin('factory-reset', (a) => a.factoryReset(keepImages, confirm));
  }
  ImportImage(source: string, name: string, kernel: string, initrd: string): Promise<Record<string, dbus.Variant>> {
    const opt = (k: string, v: string) => (v === '' ? {} : { [k]: v });
    return this.admin('manage', async () => importedDict(await this.#images().import({ source, ...opt('name', name), ...opt('kernel', kernel), ...opt('initrd', initrd) })));
  }
  ListImages(): Promise<Array<Record<string, dbus.Variant>>> {
    return guarded(async () => (await this.#images().list()).map(imageDict));
  }
  // Signals: calling one emits it with what it returns.
  SessionStarted(id: string, station: string, pool: string, vm: string): string[] {
    return [id, station, pool, vm];
  }
  SessionEnded(id: string, station: string, pool: string, reason: string, durationMs: bigint): [string, string, string, string, bigint] {
    return [id, station, pool, reason, durationMs];
  }
  PoolHealthChanged(pool: string, healthy: boolean, reason: string): [string, boolean, string] {
    return [pool, healthy, reason];
  }
  #images(): NonNullable<RootActions['images']> {
    if (!this.actions.images) throw new TabulaError('not-found', 'this supervisor keeps no image store');
    return this.actions.images;
  }
  #whitelist(): NonNullable<RootActions['whitelist']> {
    if (!this.actions.whitelist) throw new TabulaError('not-found', 'no VM network is configured ([vm_network]), so there is no whitelist');
    return this.actions.whitelist;
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
    EndSession: { inSignature: 's', outSignature: '' },
    ReloadConfig: { inSignature: '', outSignature: '' },
    FactoryReset: { inSignature: 'bs', outSignature: '' },
    ImportImage: { inSignature: 'ssss', outSignature: 'a{sv}' },
    ListImages: { inSignature: '', outSignature: 'aa{sv}' },
  },
  signals: {
    SessionStarted: { signature: 'ssss' },
    SessionEnded: { signature: 'sssst' },
    PoolHealthChanged: { signature: 'sbs' },
  },
});
