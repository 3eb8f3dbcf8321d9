import dbus from 'dbus-next';
import type { SupervisorStatus, WipeReport } from '../../app/reconciler.js';
import { TabulaError } from '../../domain/errors.js';
import type { SessionLogEntry } from '../../domain/session-log.js';
import type { StationView } from '../../domain/station-lan.js';
import type { Disposable } from '../../ports/disposable.js';
import { BUS_NAME, poolPath, ROOT_PATH, vmPath } from './names.js';
import { PoolObject, RootObject, VmObject, type RootActions } from './objects.js';

export interface SupervisorApi {
  status(): SupervisorStatus;
  onStatus(listener: (s: SupervisorStatus) => void): Disposable;
  recycle(name: string): Promise<void>;
  /** The session log, entries ended at or after `since` (ms since the epoch). */
  sessions(since: number): Promise<SessionLogEntry[]>;
  /** Removes everything Tabula owns (root only, by the bus policy); the pools are then rebuilt. */
  wipe(): Promise<WipeReport>;
  readonly whitelist?: RootActions['whitelist'];
  stations(): Promise<StationView[]>;
}

/**
 * org.tabula.Supervisor1 on the system bus: a root object, one object per
 * pool and per VM, kept in step with the supervisor's status.
 */
export class SupervisorService {
  readonly #api: SupervisorApi;
  readonly #version: string;
  readonly #root: RootObject;
  readonly #pools = new Map<string, PoolObject>();
  readonly #vms = new Map<string, VmObject>();
  #subscription: Disposable | undefined;
  /** The connection the objects are exported on now. */
  #bus: dbus.MessageBus | undefined;

  constructor(api: SupervisorApi, version: string) {
    this.#api = api;
    this.#version = version;
    this.#root = new RootObject({
      recycleVm: (name) => api.recycle(name),
      listSessions: (since) => api.sessions(since),
      wipe: () => api.wipe(),
      listStations: () => api.stations(),
      ...(api.whitelist ? { whitelist: api.whitelist } : {}),
    });
  }

  /**
   * Exports the objects on `bus`, then takes the bus name (so callers never
   * see a half-built tree). Called again with each new connection after the
   * bus was restarted: the old connection is gone with its exports.
   */
  async attach(bus: dbus.MessageBus): Promise<void> {
    this.#bus = bus;
    this.#subscription ??= this.#api.onStatus((s) => this.#sync(s));
    bus.export(ROOT_PATH, this.#root);
    for (const [name, obj] of this.#pools) bus.export(poolPath(name), obj);
    for (const [name, obj] of this.#vms) bus.export(vmPath(name), obj);
    this.#sync(this.#api.status());
    await this.#requestName(bus);
  }

  async #requestName(bus: dbus.MessageBus): Promise<void> {
    const reply = await withTimeout(bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE), 10_000, `requesting ${BUS_NAME}`);
    if (reply !== dbus.RequestNameReply.PRIMARY_OWNER && reply !== dbus.RequestNameReply.ALREADY_OWNER) {
      throw new TabulaError('bus-name-taken', `${BUS_NAME} is already owned on the system bus: is another supervisor running?`);
    }
  }

  stop(): void {
    this.#subscription?.dispose();
    this.#subscription = undefined;
  }

  #sync(s: SupervisorStatus): void {
    const bus = this.#bus;
    if (bus === undefined) return;
    const wantedPools = new Set(s.pools.map((p) => p.name));
    const wantedVms = new Set(s.pools.flatMap((p) => p.vms.map((vm) => vm.name)));
    for (const [name, obj] of this.#vms) if (!wantedVms.has(name)) this.#unexport(vmPath(name), obj, this.#vms, name);
    for (const [name, obj] of this.#pools) if (!wantedPools.has(name)) this.#unexport(poolPath(name), obj, this.#pools, name);

    for (const pool of s.pools) {
      for (const vm of pool.vms) {
        let obj = this.#vms.get(vm.name);
        if (!obj) {
          obj = new VmObject(() => this.#api.recycle(vm.name));
          this.#vms.set(vm.name, obj);
          bus.export(vmPath(vm.name), obj);
        }
        obj.update({
          Name: vm.name,
          Uuid: vm.uuid,
          Pool: vm.pool,
          Slot: vm.slot,
          State: vm.state,
          Active: vm.active,
          StateSince: BigInt(vm.stateSince),
          SpicePort: vm.spicePort ?? 0,
        });
      }
      let obj = this.#pools.get(pool.name);
      if (!obj) {
        obj = new PoolObject();
        this.#pools.set(pool.name, obj);
        bus.export(poolPath(pool.name), obj);
      }
      obj.update({
        Name: pool.name,
        Size: pool.size,
        Healthy: pool.healthy,
        HealthReason: pool.healthReason,
        Counts: { ...pool.counts },
        Vms: pool.vms.map((vm) => vmPath(vm.name)),
      });
    }
    this.#root.update({
      Version: this.#version,
      State: s.state,
      StateReason: s.reason,
      Status: s.line,
      Pools: s.pools.map((p) => poolPath(p.name)),
    });
  }

  #unexport<T extends dbus.interface.Interface>(path: string, obj: T, map: Map<string, T>, name: string): void {
    this.#bus?.unexport(path, obj);
    map.delete(name);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TabulaError('bus-unavailable', `${what}: no answer from the bus within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
