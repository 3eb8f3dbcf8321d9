import dbus from 'dbus-next';
import type { SupervisorStatus, WipeReport } from '../../app/reconciler.js';
import type { SessionStarted } from '../../app/dispatcher.js';
import type { ImportedImage, UploadRequest } from '../../app/image-import.js';
import type { PoolHistorySnapshot } from '../../app/pool-history.js';
import { TabulaError } from '../../domain/errors.js';
import { durations, type SessionLogEntry } from '../../domain/session-log.js';
import type { StationView } from '../../domain/station-lan.js';
import { healthChanges, lastActivity, liveSessions, type PoolStatus, type SessionView } from '../../domain/status.js';
import type { Authorizer } from '../../ports/authorizer.js';
import type { Disposable } from '../../ports/disposable.js';
import { BUS_NAME, errorName, nameOfElement, POOL_IFACE, poolPath, ROOT_IFACE, ROOT_PATH, SESSION_IFACE, sessionPath, VM_IFACE, vmPath } from './names.js';
import { PoolObject, SessionObject, VmObject } from './objects.js';
import { RootObject, type RootActions } from './root-object.js';
import type { Gate } from './snapshot.js';
import { timeoutProps } from './timeouts.js';

export interface SupervisorApi {
  status(): SupervisorStatus;
  onStatus(listener: (s: SupervisorStatus) => void): Disposable;
  /** A VM handed to a station. */
  onSessionStarted(listener: (e: SessionStarted) => void): Disposable;
  /** A session's entry in the session log, once it is written (every end passes there once). */
  onSessionEnded(listener: (e: SessionLogEntry) => void): Disposable;
  recycle(name: string): Promise<void>;
  /** The session log, entries ended at or after `since` (ms since the epoch). */
  sessions(since: number): Promise<SessionLogEntry[]>;
  /** Removes everything Tabula owns; the pools are then rebuilt. */
  wipe(): Promise<WipeReport>;
  readonly whitelist?: RootActions['whitelist'];
  stations(): Promise<StationView[]>;
  endSession(id: string): Promise<void>;
  drain(pool: string): Promise<void>;
  undrain(pool: string): Promise<void>;
  resize(pool: string, size: number): Promise<void>;
  /** Some of a pool's timeouts, in seconds by their config keys (idle_timeout, …); refused naming the key and its bounds. */
  setTimeouts(pool: string, changes: Readonly<Record<string, unknown>>): Promise<void>;
  reloadConfig(): Promise<void>;
  factoryReset(keepImages: boolean, confirm: string): Promise<void>;
  /** Per pool and minute over the last day: depth (clean VMs) and hand-off waits (the admin page's plots). */
  history?(): PoolHistorySnapshot;
  /** The image store: import, list, and per pool use and rollback; absent where there is none. */
  readonly images?: RootActions['images'] & {
    use(pool: string, name: string): Promise<void>;
    rollback(pool: string): Promise<void>;
    /** An image uploaded from the admin page, written straight into the store; `checkUpload` refuses one before it is sent. */
    upload(req: UploadRequest): Promise<ImportedImage>;
    checkUpload(name: string, bytes: number): Promise<void>;
  };
  /** Who may call admin methods (root; others as polkit says). */
  readonly authorizer: Authorizer;
}

/**
 * org.tabula.Supervisor1 on the system bus: a root object, one object per
 * pool, per VM and per live session, kept in step with the supervisor's
 * status; signals for sessions and pool health.
 */
export class SupervisorService {
  readonly #api: SupervisorApi;
  readonly #version: string;
  readonly #root: RootObject;
  readonly #gate: Gate;
  readonly #pools = new Map<string, PoolObject>();
  readonly #vms = new Map<string, VmObject>();
  readonly #sessions = new Map<string, SessionObject>();
  #subscriptions: Disposable[] = [];
  /** The connection the objects are exported on now. */
  #bus: dbus.MessageBus | undefined;
  /** The sender of the method call being dispatched (see Gate.caller). */
  #caller = '';
  /** The pools as last published, to tell health changes; undefined before the first. */
  #lastPools: readonly PoolStatus[] | undefined;
  /** Where each kind of object lives, and what a call to one that is not there is told. */
  readonly #kinds = [
    { prefix: `${ROOT_PATH}/pool/`, iface: POOL_IFACE, has: (n: string) => this.#pools.has(n), missing: (n: string) => `no pool named "${n}"` },
    { prefix: `${ROOT_PATH}/vm/`, iface: VM_IFACE, has: (n: string) => this.#vms.has(n), missing: (n: string) => `no Tabula VM named "${n}"` },
    { prefix: `${ROOT_PATH}/session/`, iface: SESSION_IFACE, has: (n: string) => this.#sessions.has(n), missing: (n: string) => `no session "${n}" is under way` },
  ];

  constructor(api: SupervisorApi, version: string) {
    this.#api = api;
    this.#version = version;
    this.#gate = { caller: () => this.#caller, authorize: (caller, action) => api.authorizer.authorize(caller, action) };
    this.#root = new RootObject(
      ROOT_IFACE,
      {
        recycleVm: (name) => api.recycle(name),
        listSessions: (since) => api.sessions(since),
        wipe: () => api.wipe(),
        listStations: () => api.stations(),
        ...(api.whitelist ? { whitelist: api.whitelist } : {}),
        endSession: (id) => api.endSession(id),
        reloadConfig: () => api.reloadConfig(),
        factoryReset: (keep, confirm) => api.factoryReset(keep, confirm),
        ...(api.images ? { images: api.images } : {}),
      },
      this.#gate,
    );
  }

  /**
   * Exports the objects on `bus`, then takes the bus name (so callers never
   * see a half-built tree). Called again with each new connection after the
   * bus was restarted: the old connection is gone with its exports.
   */
  async attach(bus: dbus.MessageBus): Promise<void> {
    this.#bus = bus;
    if (this.#subscriptions.length === 0) {
      this.#subscriptions = [
        this.#api.onStatus((s) => this.#sync(s)),
        this.#api.onSessionStarted((e) => this.#root.SessionStarted(e.session, e.stationName ?? e.station, e.pool, e.vm)),
        this.#api.onSessionEnded((e) => this.#root.SessionEnded(e.session, e.station.name ?? e.station.address, e.pool, e.reason, BigInt(durations(e).sessionMs ?? 0))),
      ];
    }
    bus.addMethodHandler(this.#onMethodCall);
    bus.export(ROOT_PATH, this.#root);
    for (const [name, obj] of this.#pools) bus.export(poolPath(name), obj);
    for (const [name, obj] of this.#vms) bus.export(vmPath(name), obj);
    for (const [id, obj] of this.#sessions) bus.export(sessionPath(id), obj);
    this.#sync(this.#api.status());
    await this.#requestName(bus);
  }

  /**
   * Sees every method call first: notes its sender for the admin check, and
   * answers calls to a pool, VM or session that does not exist with our
   * NotFound (dbus-next would say UnknownMethod, which names no object).
   */
  readonly #onMethodCall = (msg: dbus.Message): boolean => {
    this.#caller = msg.sender ?? '';
    const path = msg.path ?? '';
    const kind = this.#kinds.find((k) => path.startsWith(k.prefix) && msg.interface === k.iface);
    if (kind === undefined) return false;
    const name = nameOfElement(path.slice(kind.prefix.length));
    if (kind.has(name)) return false;
    const newError = dbus.Message.newError as unknown as (m: dbus.Message, name: string, text: string) => dbus.Message;
    this.#bus?.send(newError(msg, errorName('not-found'), kind.missing(name)));
    return true;
  };

  async #requestName(bus: dbus.MessageBus): Promise<void> {
    const reply = await withTimeout(bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE), 10_000, `requesting ${BUS_NAME}`);
    if (reply !== dbus.RequestNameReply.PRIMARY_OWNER && reply !== dbus.RequestNameReply.ALREADY_OWNER) {
      throw new TabulaError('bus-name-taken', `${BUS_NAME} is already owned on the system bus: is another supervisor running?`);
    }
  }

  #images(): NonNullable<SupervisorApi['images']> {
    if (!this.#api.images) throw new TabulaError('not-found', 'this supervisor keeps no image store');
    return this.#api.images;
  }

  stop(): void {
    for (const s of this.#subscriptions) s.dispose();
    this.#subscriptions = [];
  }

  #sync(s: SupervisorStatus): void {
    const bus = this.#bus;
    if (bus === undefined) return;
    const sessions = liveSessions(s.pools);
    this.#prune(this.#sessions, new Set(sessions.map((x) => x.id)), sessionPath);
    this.#prune(this.#vms, new Set(s.pools.flatMap((p) => p.vms.map((vm) => vm.name))), vmPath);
    this.#prune(this.#pools, new Set(s.pools.map((p) => p.name)), poolPath);

    for (const pool of s.pools) {
      for (const vm of pool.vms) {
        this.#object(this.#vms, vm.name, vmPath, () => new VmObject(VM_IFACE, { end: () => this.#api.recycle(vm.name) }, this.#gate)).update({
          Name: vm.name,
          Uuid: vm.uuid,
          Pool: vm.pool,
          Slot: vm.slot,
          State: vm.state,
          Active: vm.active,
          StateSince: BigInt(vm.stateSince),
          SpicePort: vm.spicePort ?? 0,
          GoldenImage: vm.golden ?? '',
        });
      }
      const name = pool.name;
      const actions = {
        drain: () => this.#api.drain(name),
        undrain: () => this.#api.undrain(name),
        resize: (size: number) => this.#api.resize(name, size),
        useImage: (image: string) => this.#images().use(name, image),
        rollbackImage: () => this.#images().rollback(name),
        setTimeouts: (changes: Record<string, number>) => this.#api.setTimeouts(name, changes),
      };
      this.#object(this.#pools, name, poolPath, () => new PoolObject(POOL_IFACE, actions, this.#gate)).update({
        Name: name,
        Size: pool.size,
        Healthy: pool.healthy,
        HealthReason: pool.healthReason,
        Drained: pool.drained,
        Counts: { ...pool.counts },
        Vms: pool.vms.map((vm) => vmPath(vm.name)),
        GoldenImage: pool.image?.goldenImage ?? '',
        PreviousGoldenImage: pool.image?.previousGoldenImage ?? '',
        GoldenImageConfirmed: pool.image?.goldenConfirmed ?? true,
        ...timeoutProps(pool.timeouts),
      });
    }
    for (const session of sessions) {
      this.#object(this.#sessions, session.id, sessionPath, () => new SessionObject(SESSION_IFACE, { end: () => this.#api.endSession(session.id) }, this.#gate)).update(sessionProps(session));
    }
    this.#root.update({
      Version: this.#version,
      State: s.state,
      StateReason: s.reason,
      Status: s.line,
      Pools: s.pools.map((p) => poolPath(p.name)),
      Sessions: sessions.map((x) => sessionPath(x.id)),
    });
    // The first status after start-up is where things are, not a change.
    if (this.#lastPools !== undefined) for (const c of healthChanges(this.#lastPools, s.pools)) this.#root.PoolHealthChanged(c.pool, c.healthy, c.reason);
    if (s.state !== 'starting') this.#lastPools = s.pools;
  }

  /** The object for `key`, made and exported when it is new. */
  #object<T extends dbus.interface.Interface>(map: Map<string, T>, key: string, path: (k: string) => string, make: () => T): T {
    let obj = map.get(key);
    if (obj === undefined) {
      obj = make();
      map.set(key, obj);
      this.#bus?.export(path(key), obj);
    }
    return obj;
  }

  /** Unexports the objects whose key is no longer wanted. */
  #prune<T extends dbus.interface.Interface>(map: Map<string, T>, wanted: ReadonlySet<string>, path: (k: string) => string): void {
    for (const [key, obj] of map) {
      if (wanted.has(key)) continue;
      this.#bus?.unexport(path(key), obj);
      map.delete(key);
    }
  }
}

function sessionProps(s: SessionView): Record<string, unknown> {
  return {
    Id: s.id,
    Station: s.stationName ?? s.station,
    StationName: s.stationName ?? '',
    RemoteAddress: s.station,
    Pool: s.pool,
    Vm: s.vm,
    Protocol: s.protocol,
    StartedAt: BigInt(s.handedAt),
    ConnectedAt: BigInt(s.connectedAt ?? 0),
    LastActivity: BigInt(lastActivity(s)),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TabulaError('bus-unavailable', `${what}: no answer from the bus within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
