import type { Config } from '../config/config.js';
import { asTabulaError, TabulaError } from '../domain/errors.js';
import { endedSession, withState, type ObservedVm, type SessionRecord } from '../domain/vm.js';
import type { SessionEndCause } from '../domain/steps.js';
import { logEntryOf } from '../domain/session-log.js';
import type { Clock } from '../ports/clock.js';
import type { Disposable } from '../ports/disposable.js';
import type { Conntrack } from '../ports/firewall.js';
import type { GraphicsEvent, Libvirt } from '../ports/libvirt.js';
import type { Logger } from '../ports/logger.js';
import type { NewSecret } from '../ports/secrets.js';
import type { Neighbours } from '../ports/neighbours.js';
import type { SessionLog } from '../ports/session-log.js';
import type { KeyedLocks } from './keyed-locks.js';
import type { MetricsSink } from './supervisor-metrics.js';
import { NO_FAULTS, type Faults } from '../ports/faults.js';
import type { SupervisorStatus } from './reconciler.js';

/** How often the console's connections are looked at while a station is expected. */
const CONNECT_POLL_MS = 250;

export interface HandoffRequest {
  readonly station: string;
  /** The station's own name, when it gave one (v1). */
  readonly stationName?: string;
  readonly protocol: 'v0' | 'v1';
  /** A pool by name; the first configured pool when absent. */
  readonly pool?: string;
  /** Aborting gives up the place in the queue (the station went away). */
  readonly signal: AbortSignal;
  /** Told the station's place in line (1 = next) whenever it changes while no VM is clean. */
  readonly onQueued?: (position: number) => void;
}

export interface Handoff {
  readonly vm: string;
  readonly pool: string;
  readonly session: string;
  readonly consolePort: number;
  /** The one-time Spice password, on pools with tickets; valid for `expiresMs`. */
  readonly ticket?: string;
  readonly expiresMs: number;
  /** True once the station's Spice client is on the console; false when the wait ran out. */
  readonly connected: Promise<boolean>;
}

/** A VM handed to a station: a session begins. */
export interface SessionStarted {
  readonly session: string;
  readonly station: string;
  readonly stationName?: string;
  readonly pool: string;
  readonly vm: string;
}

export interface DispatcherDeps {
  readonly libvirt: Libvirt;
  readonly conntrack: Conntrack;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly newSecret: NewSecret;
  readonly neighbours?: Neighbours;
  /** Where a hand-off nobody took up is recorded (a used VM's session is logged when the VM goes). */
  readonly sessionLog?: SessionLog;
  readonly metrics?: MetricsSink;
  readonly faults?: Faults;
  /** Told of each hand-off (the D-Bus API's SessionStarted). */
  readonly onSessionStarted?: (e: SessionStarted) => void;
}

/** What the dispatcher needs of the reconciler. */
export interface PoolKeeper {
  readonly locks: KeyedLocks;
  status(): SupervisorStatus;
  onStatus(listener: (s: SupervisorStatus) => void): Disposable;
  syncFirewall(): Promise<void>;
  poke(): void;
  /** A drained pool hands out nothing. */
  isDrained(pool: string): boolean;
}

/**
 * Hands clean VMs to stations, first come first served, and settles each
 * hand-off: connected (the VM is the station's until the session ends) or not
 * taken up (back to clean, but only if no client ever touched the console).
 */
export class Dispatcher {
  readonly #config: Config;
  readonly #deps: DispatcherDeps;
  readonly #keeper: PoolKeeper;
  readonly #queue: Array<{ req: HandoffRequest; wake: () => void }> = [];
  /** Stations with a request queued or a hand-off not yet settled: one at a time each. */
  readonly #busy = new Set<string>();

  readonly #faults: Faults;

  constructor(config: Config, deps: DispatcherDeps, keeper: PoolKeeper) {
    this.#config = config;
    this.#deps = deps;
    this.#keeper = keeper;
    this.#faults = deps.faults ?? NO_FAULTS;
  }

  /** Stations waiting, per pool. */
  queueLengths(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.#queue) {
      const pool = e.req.pool ?? this.#config.pools[0]?.name ?? '';
      out.set(pool, (out.get(pool) ?? 0) + 1);
    }
    return out;
  }

  /** Waits for a clean VM of the pool, claims it for the station and opens its forward. */
  async request(req: HandoffRequest): Promise<Handoff> {
    const pool = req.pool ?? this.#config.pools[0]?.name;
    if (pool === undefined || !this.#config.pools.some((p) => p.name === pool)) {
      throw new TabulaError('not-found', pool === undefined ? 'no pool is configured' : `no pool named "${pool}"`);
    }
    this.#refuseDrained(pool);
    if (req.protocol === 'v0' && this.#config.pools.find((p) => p.name === pool)?.consoleTickets) {
      throw new TabulaError('ticket-required', `pool ${pool} requires Spice tickets, which v0 stations cannot give (set console_tickets = false for them)`);
    }
    // While libvirt cannot be reached nothing can be handed out or checked: the station asks again later.
    if (this.#keeper.status().state === 'degraded') {
      throw new TabulaError('libvirt-unavailable', `the supervisor cannot reach libvirt right now (${this.#keeper.status().reason})`, { retryable: true });
    }
    if (this.#busy.has(req.station)) throw new TabulaError('conflict', `station ${req.station} is already waiting for a desktop`);
    const requestedAt = this.#deps.clock.now();
    // Taken before anything is awaited: two requests from one station must never both get past here.
    this.#busy.add(req.station);
    try {
      // A station shows one desktop: while its session runs it gets no second VM.
      const live = (await this.#deps.libvirt.listDomains()).find((d) => d.record?.state === 'in-use' && d.record.session?.station === req.station);
      if (live) throw new TabulaError('session-under-way', `station ${req.station} has a session under way on ${live.name}`);
    } catch (e) {
      this.#busy.delete(req.station);
      throw e;
    }
    const entry = { req, wake: () => undefined as void };
    this.#queue.push(entry);
    let handedOut = false;
    let lastPosition = 0;
    const subscription = this.#keeper.onStatus(() => entry.wake());
    try {
      for (;;) {
        if (req.signal.aborted) throw new TabulaError('invalid-argument', 'the station went away');
        // Drained while the station waited: it is told now rather than left waiting for good.
        this.#refuseDrained(pool);
        // First come, first served: only the head of the queue for this pool may claim.
        const line = this.#queue.filter((e) => (e.req.pool ?? this.#config.pools[0]?.name) === pool);
        if (line[0] === entry) {
          const claimed = await this.#claim(pool, req, requestedAt);
          if (claimed) {
            handedOut = true;
            void claimed.connected.finally(() => this.#busy.delete(req.station));
            return claimed;
          }
        }
        const position = line.indexOf(entry) + 1;
        if (position !== lastPosition) req.onQueued?.(position);
        lastPosition = position;
        // Woken by a status change (a VM may be clean now) or the station leaving; else look again in a second.
        const wake = new AbortController();
        entry.wake = () => wake.abort();
        req.signal.addEventListener('abort', entry.wake, { once: true });
        await this.#deps.clock.sleep(1000, wake.signal);
        req.signal.removeEventListener('abort', entry.wake);
      }
    } finally {
      if (!handedOut) this.#busy.delete(req.station);
      subscription.dispose();
      this.#queue.splice(this.#queue.indexOf(entry), 1);
      // The next station in line may claim now.
      for (const e of this.#queue) e.wake();
    }
  }

  #refuseDrained(pool: string): void {
    if (this.#keeper.isDrained(pool)) throw new TabulaError('pool-drained', `pool ${pool} is drained by staff: it hands out no desktop until it is undrained`, { retryable: true });
  }

  async #claim(pool: string, req: HandoffRequest, requestedAt: number): Promise<Handoff | undefined> {
    const tickets = this.#config.pools.find((p) => p.name === pool)?.consoleTickets ?? false;
    const expiresMs = this.#config.stations?.connectWaitMs ?? 10_000;
    const status = this.#keeper.status().pools.find((p) => p.name === pool);
    // VMs of the pool's current golden image first: those of an old one are about to be replaced.
    const old = (vm: { golden?: string }) => Number(vm.golden !== undefined && status?.image !== undefined && vm.golden !== status.image.goldenImage);
    const candidates = status?.vms.filter((vm) => vm.state === 'clean' && vm.active).sort((a, b) => old(a) - old(b) || a.stateSince - b.stateSince);
    if (!candidates?.length) return undefined;
    const mac = await this.#deps.neighbours?.macOf(req.station);
    for (const candidate of candidates) {
      const handoff = await this.#keeper.locks.run(candidate.name, async () => {
        const vm = await this.#deps.libvirt.getDomain(candidate.name);
        // Re-checked under the lock: the reconciler may have taken it away meanwhile.
        if (!vm?.record || vm.record.state !== 'clean' || !vm.active || !vm.agentConnected || vm.spicePort === undefined) return undefined;
        const now = this.#deps.clock.now();
        const session: SessionRecord = {
          id: this.#deps.newSecret().slice(0, 12),
          station: req.station,
          protocol: req.protocol,
          handedAt: now,
          requestedAt,
          ...(req.stationName === undefined ? {} : { stationName: req.stationName }),
          ...(mac === undefined ? {} : { stationMac: mac }),
        };
        await this.#deps.libvirt.setVmRecord(vm.name, withState(vm.record, 'in-use', now, { session }));
        this.#faults.at('handoff:claimed');
        // The station's one-time ticket: dead once its wait is over, and replaced once it connected.
        const ticket = tickets ? this.#deps.newSecret() : undefined;
        if (ticket !== undefined) await this.#setTicket(vm.name, vm.spicePort, ticket, now + expiresMs);
        this.#faults.at('handoff:ticketed');
        return { vm: vm as ObservedVm, session, consolePort: vm.spicePort, ticket };
      });
      if (!handoff) continue;
      this.#deps.metrics?.handedOut(pool, req.protocol, handoff.session.handedAt - requestedAt);
      await this.#keeper.syncFirewall();
      this.#faults.at('handoff:forwarded');
      this.#deps.logger.notice('vm-handed-out', { vm: handoff.vm.name, pool, station: req.station, session: handoff.session.id, protocol: req.protocol });
      try {
        this.#deps.onSessionStarted?.({ session: handoff.session.id, station: req.station, ...(req.stationName === undefined ? {} : { stationName: req.stationName }), pool, vm: handoff.vm.name });
      } catch (e) {
        // The news is for onlookers; the station gets its desktop regardless.
        this.#deps.logger.err('session-listener-failed', { error: asTabulaError(e).message });
      }
      return {
        vm: handoff.vm.name,
        pool,
        session: handoff.session.id,
        consolePort: handoff.consolePort,
        ...(handoff.ticket === undefined ? {} : { ticket: handoff.ticket }),
        expiresMs,
        connected: this.#settle(handoff.vm.name, pool, handoff.session, handoff.consolePort, handoff.ticket !== undefined),
      };
    }
    return undefined;
  }

  /** Ends a station's session at its own request (the visitor is done, or the station is gone). */
  async endSession(sessionId: string, cause: SessionEndCause = 'station'): Promise<void> {
    const vm = (await this.#deps.libvirt.listDomains()).find((d) => d.record?.state === 'in-use' && d.record.session?.id === sessionId);
    if (!vm) return;
    await this.#keeper.locks.run(vm.name, async () => {
      const now = await this.#deps.libvirt.getDomain(vm.name);
      const r = now?.record;
      if (!r || r.state !== 'in-use' || r.session?.id !== sessionId) return;
      await this.#deps.libvirt.setVmRecord(vm.name, endedSession(r, this.#deps.clock.now(), cause));
      this.#deps.logger.notice('session-ended-by-station', { vm: vm.name, station: r.session.station, session: sessionId, reason: cause });
    });
    this.#keeper.poke();
  }

  /**
   * A station picks up its running session again on a new control connection
   * (after the supervisor restarted, or the station's link blinked).
   */
  async resume(station: string, sessionId: string): Promise<{ vm: string; pool: string; session: SessionRecord }> {
    const vm = (await this.#deps.libvirt.listDomains()).find((d) => d.record?.state === 'in-use' && d.record.session?.id === sessionId);
    const s = vm?.record?.session;
    // Another station's session id is answered exactly like an unknown one.
    if (!vm?.record || s === undefined || s.station !== station || s.connectedAt === undefined) {
      throw new TabulaError('not-found', `station ${station} has no session ${sessionId} under way`);
    }
    this.#deps.logger.notice('session-resumed', { vm: vm.name, station, session: sessionId });
    return { vm: vm.name, pool: vm.record.pool, session: s };
  }

  async #retireTicket(name: string, port: number, sessionId: string): Promise<void> {
    await this.#deps.clock.sleep(this.#config.stations?.forwardGraceMs ?? 3_000);
    try {
      await this.#keeper.locks.run(name, async () => {
        const r = (await this.#deps.libvirt.getDomain(name))?.record;
        if (r?.state === 'in-use' && r.session?.id === sessionId) await this.#setTicket(name, port, this.#deps.newSecret());
      });
    } catch (e) {
      // The VM may be gone already (the session ended): then there is nothing left to protect.
      this.#deps.logger.warning('ticket-not-retired', { vm: name, error: asTabulaError(e).message });
    }
  }

  async #setTicket(name: string, port: number, password: string, validUntil?: number): Promise<void> {
    await this.#deps.libvirt.setConsoleTicket(name, { port, listen: this.#config.spiceListen, password, ...(validUntil === undefined ? {} : { validUntil }) });
  }

  /** Watches the console until the station's client arrives or the wait runs out. */
  async #settle(name: string, pool: string, session: SessionRecord, consolePort: number, ticketed: boolean): Promise<boolean> {
    const st = this.#config.stations;
    const waitMs = st?.connectWaitMs ?? 10_000;
    const { clock, conntrack, libvirt, logger } = this.#deps;
    let touched = false;
    let arrived = false;
    let wake = new AbortController();
    const events = libvirt.onGraphicsEvent((e: GraphicsEvent) => {
      if (e.domain !== name) return;
      touched = true;
      // With tickets only an authenticated channel counts; without, any connection from the station.
      const authenticated = ticketed ? e.phase === 'initialize' : e.phase !== 'disconnect';
      if (e.remoteAddress === session.station && authenticated) arrived = true;
      wake.abort();
    });
    try {
      const deadline = session.handedAt + waitMs;
      while (!arrived && clock.now() < deadline) {
        if (st) {
          const flows = await conntrack.established(st.consoleAddress, consolePort);
          if (flows.length > 0) touched = true;
          if (!ticketed && flows.some((f) => f.source === session.station)) arrived = true;
        }
        if (arrived) break;
        const w = wake;
        await clock.sleep(Math.min(CONNECT_POLL_MS, Math.max(0, deadline - clock.now())), w.signal);
        if (w.signal.aborted) wake = new AbortController();
      }
      const now = clock.now();
      if (arrived) this.#faults.at('handoff:arrived');
      await this.#keeper.locks.run(name, async () => {
        const vm = await libvirt.getDomain(name);
        const r = vm?.record;
        if (!r || r.state !== 'in-use' || r.session?.id !== session.id) return;
        if (arrived) {
          if (r.session.connectedAt === undefined) await libvirt.setVmRecord(name, { ...r, session: { ...r.session, connectedAt: now } });
          this.#faults.at('handoff:connected');
          // Once the client's other channels are in, nobody may know the ticket: it cannot be
          // replayed and no second client can take over.
          if (ticketed) void this.#retireTicket(name, consolePort, session.id);
        } else if (!touched) {
          // Nobody ever reached the console: the VM is as clean as it was, with a ticket nobody holds.
          if (ticketed) await this.#setTicket(name, consolePort, this.#deps.newSecret());
          await libvirt.setVmRecord(name, withState(r, 'clean', now));
          // The VM lives on, so its record will not tell: the hand-off is logged here.
          await this.#deps.sessionLog?.append(logEntryOf(name, pool, r.session, now, 'not-taken'));
        } else {
          await libvirt.setVmRecord(name, endedSession(r, now, 'not-connected'));
        }
      });
      if (arrived) this.#deps.metrics?.connected(pool, now - session.handedAt);
      if (arrived) logger.notice('session-connected', { vm: name, pool, station: session.station, session: session.id, handoff_ms: now - session.handedAt });
      else logger.notice('handoff-not-taken', { vm: name, pool, station: session.station, session: session.id, back_to: touched ? 'dirty' : 'clean' });
      return arrived;
    } catch (e) {
      const err = asTabulaError(e);
      logger.err('handoff-failed', { vm: name, station: session.station, code: err.code, error: err.message });
      this.#deps.metrics?.failed(err.code, 'handoff');
      return false;
    } finally {
      events.dispose();
      // The forward closes (now or after its grace), and a VM back to clean or dirty is picked up.
      this.#keeper.poke();
      await this.#keeper.syncFirewall().catch(() => undefined);
    }
  }
}
