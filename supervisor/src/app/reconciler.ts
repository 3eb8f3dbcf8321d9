import { timeoutsOf, type Config } from '../config/config.js';
import { asTabulaError, TabulaError } from '../domain/errors.js';
import { goldenProblem } from '../domain/golden.js';
import type { CloneOutcome } from '../domain/golden-switch.js';
import {
  afterFailure,
  afterSuccess,
  DEFAULT_HEALTH_POLICY,
  FRESH_HEALTH,
  verdict,
  withGoldenProblem,
  type HealthPolicy,
  type PoolHealth,
} from '../domain/health.js';
import { plan, type Desired, type Observed, type PoolFile } from '../domain/planner.js';
import { ownerOfFile } from '../domain/pool.js';
import { logEntryOf } from '../domain/session-log.js';
import { poolStatus, statusLine, type PoolStatus } from '../domain/status.js';
import { isCloneFailure, sessionEndCause, type SessionEndCause, type Step } from '../domain/steps.js';
import { endedSession, isOwned, type ObservedVm } from '../domain/vm.js';
import type { Clock } from '../ports/clock.js';
import type { FirewallSpec } from '../domain/firewall.js';
import type { Conntrack, Firewall } from '../ports/firewall.js';
import type { Disposable } from '../ports/disposable.js';
import type { Logger } from '../ports/logger.js';
import type { Notifier } from '../ports/notifier.js';
import type { SessionActivity } from './activity.js';
import type { MetricsSink } from './supervisor-metrics.js';
import type { HostResources } from '../ports/host-resources.js';
import { resourceProblem, type HostRoom } from '../domain/resources.js';
import { executeStep, type ExecutorDeps } from './executor.js';
import { KeyedLocks } from './keyed-locks.js';
import { Lane } from './lane.js';
import { Listeners } from './listeners.js';
import { stepEvent, stepFields, stepPool } from './step-log.js';

export type SupervisorState = 'starting' | 'ready' | 'degraded';

export interface SupervisorStatus {
  readonly state: SupervisorState;
  /** Why the supervisor is degraded; empty otherwise. */
  readonly reason: string;
  readonly pools: readonly PoolStatus[];
  /** One human line, as sent to systemd's STATUS=. */
  readonly line: string;
}

export interface SessionEnded {
  readonly session: string;
  readonly vm: string;
  readonly cause: SessionEndCause;
}

/** What a wipe removed. */
export interface WipeReport {
  readonly domains: number;
  readonly files: number;
  /** Sessions under way that it ended (their stations were told, cause `wipe`). */
  readonly sessions: number;
}

export interface ReconcilerDeps extends ExecutorDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly notifier: Notifier;
  /** Needed only with a station LAN. */
  readonly firewall?: Firewall;
  readonly conntrack?: Conntrack;
  /** Input reported by v1 stations, for the idle limit. */
  readonly activity?: SessionActivity;
  readonly metrics?: MetricsSink;
  /** Host memory and disk space, against the reserves; without it nothing is gated. */
  readonly resources?: HostResources;
}

/** While a clone boots, libvirt is re-read this often: the agent channel has no event of its own. */
const BOOT_POLL_MS = 250;
/** How often a golden image that was found unusable is looked at again. */
const GOLDEN_RECHECK_MS = 5_000;
/** Beyond a station's connect wait, before a hand-off nobody took up is given up on by the planner. */
const HANDOFF_SLACK_MS = 30_000;
/** A settle stops after this many rounds even if steps keep coming, so the watchdog is fed. */
const MAX_ROUNDS_PER_SETTLE = 40;

interface RoundResult {
  readonly planned: number;
  readonly succeeded: number;
  readonly wakeAt?: number;
  readonly booting: boolean;
}

/**
 * Keeps libvirt's domains in line with the config: observe → plan → execute,
 * until the plan is empty. Events only wake it up; it always re-reads libvirt.
 */
export class Reconciler {
  #config: Config;
  readonly #deps: ReconcilerDeps;
  readonly #policy: HealthPolicy;
  readonly #lane = new Lane();
  /** Per-VM locks, shared with the dispatcher: every writer of a record takes its VM's lock. */
  readonly locks = new KeyedLocks();
  readonly #health = new Map<string, PoolHealth>();
  readonly #golden = new Map<string, { format?: string; checkedAt: number }>();
  readonly #listeners: Listeners<SupervisorStatus>;
  readonly #sessionListeners: Listeners<SessionEnded>;
  readonly #cloneListeners: Listeners<CloneOutcome>;
  /** Pools staff drained: they hand out nothing and are not refilled. */
  #drained: ReadonlySet<string> = new Set();
  /** Why a start failed, so the removal that follows reports the real cause. */
  readonly #startErrors = new Map<string, string>();
  /** This round's measure of the host; a pool short of a VM that does not fit says why here. */
  #room: HostRoom = { memoryReserveMiB: 0 };
  readonly #diskFree = new Map<string, number>();
  readonly #resourceProblems = new Map<string, string>();
  /** When each slot's VM was taken away, until its replacement is clean: the recycle time. */
  readonly #takenAt = new Map<string, number>();
  #status: SupervisorStatus = { state: 'starting', reason: '', pools: [], line: 'starting' };
  #wake = new AbortController();
  readonly #firewallLane = new Lane();
  #appliedFirewall: string | undefined;
  #wiping = false;

  constructor(config: Config, deps: ReconcilerDeps, policy: HealthPolicy = DEFAULT_HEALTH_POLICY) {
    this.#config = config;
    this.#deps = deps;
    this.#policy = policy;
    this.#listeners = new Listeners(deps.logger, 'status-listener-failed');
    this.#sessionListeners = new Listeners(deps.logger, 'session-listener-failed');
    this.#cloneListeners = new Listeners(deps.logger, 'clone-listener-failed');
    for (const p of config.pools) this.#health.set(p.name, FRESH_HEALTH);
  }

  status(): SupervisorStatus {
    return this.#status;
  }

  /** The config in force (SIGHUP may have swapped it). */
  config(): Config {
    return this.#config;
  }

  onStatus(listener: (s: SupervisorStatus) => void): Disposable {
    return this.#listeners.add(listener);
  }

  /** Sessions that ended because their VM was taken away (client gone, guest stopped, admin). */
  onSessionEnded(listener: (e: SessionEnded) => void): Disposable {
    return this.#sessionListeners.add(listener);
  }

  #sessionEnded(e: SessionEnded): void {
    this.#sessionListeners.emit(e);
  }

  /** Each clone that came up or failed to, with the golden image it was made from (a switch's probation watches them). */
  onCloneOutcome(listener: (o: CloneOutcome) => void): Disposable {
    return this.#cloneListeners.add(listener);
  }

  /**
   * The pool went back to its previous golden image by itself: it reports
   * unhealthy with `reason` until a clone of that image comes up.
   */
  noteRollback(pool: string, reason: string): void {
    this.#health.set(pool, { ...this.#healthOf(pool), rolledBack: reason });
    this.poke();
  }

  /** This round's measure of the host's memory against the reserve (budget absent when not measured). */
  room(): HostRoom {
    return this.#room;
  }

  isDrained(pool: string): boolean {
    return this.#drained.has(pool);
  }

  /**
   * Which pools are drained. Said in the status at once (a station asking
   * right after is refused), and the next round stops refilling them.
   */
  setDrained(drained: ReadonlySet<string>): void {
    this.#drained = new Set(drained);
    const pools = this.#status.pools.map((p) => ({ ...p, drained: this.#drained.has(p.name) }));
    // A degraded status keeps its own line: the reason matters more.
    this.#setStatus({ ...this.#status, pools, ...(this.#status.state === 'ready' ? { line: statusLine(pools) } : {}) });
    this.poke();
  }

  /** A hint that something changed: re-read libvirt now rather than at the next tick. */
  poke(): void {
    this.#wake.abort();
  }

  /**
   * Swaps in a new, already validated config between two rounds. Pools that
   * are gone are emptied by the next round; live sessions are not cut.
   */
  async reconfigure(next: Config): Promise<void> {
    await this.#lane.run(async () => {
      const before = new Map(this.#config.pools.map((p) => [p.name, p.goldenImage]));
      this.#config = next;
      const names = new Set(next.pools.map((p) => p.name));
      for (const name of [...this.#health.keys()]) if (!names.has(name)) this.#health.delete(name);
      // Golden images are looked at again: the path or the file may have changed.
      this.#golden.clear();
      for (const p of next.pools) {
        const h = this.#health.get(p.name);
        if (h === undefined) this.#health.set(p.name, FRESH_HEALTH);
        // Another image gets a fresh set of tries; a rollback's note stays until a clone comes up.
        else if (before.get(p.name) !== p.goldenImage) this.#health.set(p.name, h.rolledBack === undefined ? FRESH_HEALTH : { ...FRESH_HEALTH, rolledBack: h.rolledBack });
      }
    });
    this.poke();
  }

  /**
   * Ends a session under way as a station's END would, but with cause
   * `admin`: its VM is destroyed, its disk deleted, a fresh clone made.
   */
  async endSession(sessionId: string): Promise<void> {
    const vm = (await this.#deps.libvirt.listDomains()).find((d) => d.record?.state === 'in-use' && d.record.session?.id === sessionId);
    if (vm === undefined) throw new TabulaError('not-found', `no session "${sessionId}" is under way`);
    await this.recycle(vm.name, sessionId);
  }

  /**
   * Marks a VM dirty so that it is destroyed and replaced by a fresh clone.
   * With `session`, only while that session is still under way on it (re-read
   * under the VM's lock): it may have ended meanwhile.
   */
  async recycle(name: string, session?: string): Promise<void> {
    try {
      await this.locks.run(name, async () => {
        const vm = await this.#deps.libvirt.getDomain(name);
        if (!vm?.record) throw new TabulaError('not-found', `no Tabula VM named "${name}"`);
        if (session !== undefined && (vm.record.state !== 'in-use' || vm.record.session?.id !== session)) throw new TabulaError('not-found', `no session "${session}" is under way`);
        if (vm.record.state === 'dirty') return;
        await this.#deps.libvirt.setVmRecord(name, endedSession(vm.record, this.#deps.clock.now(), 'admin'));
        this.#deps.logger.notice('vm-marked-dirty', { vm: name, pool: vm.record.pool, was: vm.record.state });
        const ended = vm.record.state === 'in-use' ? vm.record.session?.id : undefined;
        if (ended !== undefined) this.#sessionEnded({ session: ended, vm: name, cause: 'admin' });
      });
    } finally {
      this.poke();
    }
  }

  /**
   * Removes everything Tabula owns: every Tabula domain of any pool, configured
   * or not (a session under way ends with cause `wipe`, and is logged), every
   * file Tabula made in the configured pools' storage directories, and every
   * console forward; pool health and golden-image checks start afresh. It runs
   * alone in the lane, so no round sees it half done; the next round rebuilds
   * the pools. A VM that cannot be removed does not stop the others: the wipe
   * then throws `libvirt-failed` naming what is left. Refused (`conflict`)
   * while another wipe runs.
   */
  async wipe(reason: 'start' | 'admin'): Promise<WipeReport> {
    if (this.#wiping) throw new TabulaError('conflict', 'a wipe is already under way');
    this.#wiping = true;
    try {
      return await this.#lane.run(() => this.#wipe(reason));
    } finally {
      this.#wiping = false;
      this.poke();
    }
  }

  async #wipe(reason: 'start' | 'admin'): Promise<WipeReport> {
    const { libvirt, logger, clock } = this.#deps;
    const vms = (await libvirt.listDomains()).filter(isOwned);
    logger.notice('wipe-started', { reason, domains: vms.length });
    const tally = { domains: 0, files: 0, sessions: 0 };
    const left: string[] = [];
    const failed = (what: string, e: unknown, where: Record<string, string>) => {
      const err = asTabulaError(e, 'libvirt-failed');
      left.push(`${what} (${err.message})`);
      logger.err('wipe-step-failed', { ...where, code: err.code, error: err.message });
      this.#deps.metrics?.failed(err.code, 'wipe');
    };

    const kept = new Set<string>();
    await Promise.all(
      vms.map(async (vm) => {
        try {
          await this.#wipeVm(vm.name, tally);
        } catch (e) {
          kept.add(vm.name);
          failed(vm.name, e, { vm: vm.name, pool: vm.record.pool });
        } finally {
          this.#deps.notifier.watchdog();
        }
      }),
    );

    const ctx = { config: this.#config, locks: this.locks, goldenFormat: () => undefined, now: clock.now() };
    for (const pool of this.#config.pools) {
      let files: string[];
      try {
        files = await this.#deps.disks.list(pool.storageDir);
      } catch (e) {
        failed(pool.storageDir, e, { pool: pool.name });
        continue;
      }
      for (const file of files) {
        const owner = ownerOfFile(pool.name, file);
        // A VM that is still there keeps its disk; the planner deletes it once the domain is gone.
        if (owner === undefined || kept.has(owner)) continue;
        const step: Step = { kind: 'delete-file', pool: pool.name, file };
        try {
          await executeStep(step, ctx, this.#deps);
          tally.files++;
          logger.info(stepEvent(step), { ...stepFields(step), reason: 'wipe' });
        } catch (e) {
          failed(`${pool.storageDir}/${file}`, e, { pool: pool.name, file });
        }
      }
    }

    try {
      // No VM, no forward.
      await this.#applyFirewall([], clock.now());
    } catch (e) {
      failed('the console forwards', e, {});
    }

    this.#health.clear();
    for (const p of this.#config.pools) this.#health.set(p.name, FRESH_HEALTH);
    this.#golden.clear();
    this.#startErrors.clear();
    this.#takenAt.clear();

    const report: WipeReport = { ...tally };
    if (left.length > 0) {
      logger.err('wipe-incomplete', { reason, ...report, failed: left.length });
      throw new TabulaError('libvirt-failed', `the wipe could not remove: ${left.join('; ')}`);
    }
    logger.notice('wipe-finished', { reason, ...report });
    return report;
  }

  /** Under the VM's lock: ends its session (if any), destroys and undefines it. */
  async #wipeVm(name: string, tally: { domains: number; sessions: number }): Promise<void> {
    const { libvirt, clock, logger, sessionLog } = this.#deps;
    await this.locks.run(name, async () => {
      const vm = await libvirt.getDomain(name);
      const was = vm?.record;
      if (vm === undefined || was === undefined) return;
      const now = clock.now();
      let record = was;
      if (record.state !== 'dirty') {
        // Dirty before it goes, as destroy-vm does: a crash half-way is never read as "died".
        record = endedSession(record, now, 'wipe');
        await libvirt.setVmRecord(name, record);
        const session = was.state === 'in-use' ? was.session?.id : undefined;
        if (session !== undefined) {
          tally.sessions++;
          this.#sessionEnded({ session, vm: name, cause: 'wipe' });
        }
      }
      if (vm.active) await libvirt.destroyDomain(name);
      // On disk before the record is gone, as the executor does for undefine-vm.
      if (record.session !== undefined) await sessionLog?.append(logEntryOf(name, record.pool, record.session, now, 'wipe'));
      await libvirt.undefineDomain(name);
      tally.domains++;
      logger.info('vm-wiped', { vm: name, pool: record.pool, was: was.state });
    });
  }

  /** Rounds until nothing is left to do now (or no step succeeds). */
  async settle(): Promise<RoundResult> {
    let last: RoundResult = { planned: 0, succeeded: 0, booting: false };
    for (let i = 0; i < MAX_ROUNDS_PER_SETTLE; i++) {
      last = await this.#lane.run(() => this.#round());
      this.#deps.notifier.watchdog();
      if (last.planned === 0 || last.succeeded === 0) break;
    }
    return last;
  }

  /** The main loop; returns once `signal` aborts and the current round is done. */
  async run(signal: AbortSignal): Promise<void> {
    const { clock, notifier, logger } = this.#deps;
    const onAbort = () => this.poke();
    signal.addEventListener('abort', onAbort);
    let ready = false;
    try {
      while (!signal.aborted) {
        // Armed before the round, so a poke that arrives during it cuts the next sleep short.
        this.#wake = new AbortController();
        const r = await this.settle();
        if (!ready && this.#status.state !== 'starting') {
          ready = true;
          notifier.ready();
          logger.notice('supervisor-ready', { status: this.#status.line });
        }
        const now = clock.now();
        let next = now + this.#config.heartbeatMs;
        const watchdog = notifier.watchdogIntervalMs();
        if (watchdog !== undefined) next = Math.min(next, now + watchdog);
        if (r.wakeAt !== undefined) next = Math.min(next, r.wakeAt);
        if (r.booting) next = Math.min(next, now + BOOT_POLL_MS);
        if (signal.aborted) break;
        await clock.sleep(Math.max(0, next - now), this.#wake.signal);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async #round(): Promise<RoundResult> {
    const now = this.#deps.clock.now();
    await this.#checkGoldenImages(now);
    await this.#measureHost();
    let observed: Observed;
    try {
      observed = await this.#observe();
    } catch (e) {
      this.#degrade(asTabulaError(e, 'libvirt-unavailable'));
      return { planned: 0, succeeded: 0, booting: false };
    }
    this.#judgeResources(observed.vms);
    this.#publish(observed.vms);
    let firewallWake: number | undefined;
    try {
      firewallWake = await this.#applyFirewall(observed.vms, now);
    } catch (e) {
      const err = asTabulaError(e, 'firewall-failed');
      this.#deps.logger.err('firewall-failed', { code: err.code, error: err.message });
    }
    const planned = plan(observed, this.#desired(), now);
    const steps = planned.steps;
    const wakeAt = [planned.wakeAt, firewallWake].filter((w): w is number => w !== undefined).reduce<number | undefined>((a, b) => (a === undefined ? b : Math.min(a, b)), undefined);
    const outcomes = await Promise.all(steps.map((s) => this.#execute(s)));
    const booting = observed.vms.some((vm) => vm.record.state === 'booting' || vm.record.state === 'cloning');
    return {
      planned: steps.length,
      succeeded: outcomes.filter(Boolean).length,
      booting: booting || steps.some((s) => s.kind === 'start-vm' || s.kind === 'define-vm'),
      ...(wakeAt === undefined ? {} : { wakeAt }),
    };
  }

  async #observe(): Promise<Observed> {
    const vms = await this.#withClients((await this.#deps.libvirt.listDomains()).filter(isOwned));
    const files: PoolFile[] = [];
    for (const pool of this.#config.pools) {
      for (const file of await this.#deps.disks.list(pool.storageDir)) files.push({ pool: pool.name, file });
    }
    return { vms, files };
  }

  /**
   * Whether a Spice client is on each in-use VM's console, from conntrack: the
   * established connections are the truth, Graphics signals only hints.
   */
  async #withClients(vms: ObservedVm[]): Promise<ObservedVm[]> {
    const st = this.#config.stations;
    const { conntrack, activity } = this.#deps;
    if (!st || !conntrack) return vms;
    activity?.keepOnly(new Set(vms.flatMap((vm) => (vm.record.state === 'in-use' && vm.record.session ? [vm.record.session.id] : []))));
    return Promise.all(
      vms.map(async (vm) => {
        if (vm.record.state !== 'in-use' || !vm.active || vm.spicePort === undefined) return vm;
        const flows = await conntrack.established(st.consoleAddress, vm.spicePort);
        const session = vm.record.session;
        const input = activity && session?.protocol === 'v1' ? { lastInputAt: activity.lastInput(session.id) } : {};
        return { ...vm, clientConnected: flows.length > 0, ...input };
      }),
    );
  }

  /** Re-reads libvirt and makes the firewall match it (a hand-off opens its forward this way). */
  async syncFirewall(): Promise<void> {
    const vms = (await this.#deps.libvirt.listDomains()).filter(isOwned);
    await this.#applyFirewall(vms, this.#deps.clock.now());
  }

  /**
   * The firewall is a pure render of the VM records: a forward for each
   * hand-off whose client has not been connected longer than the grace.
   * Returns when a forward's grace ends (the next change due by time alone).
   */
  async #applyFirewall(vms: readonly ObservedVm[], now: number): Promise<number | undefined> {
    const st = this.#config.stations;
    const firewall = this.#deps.firewall;
    if (!st || !firewall) return undefined;
    // One forward per station, its newest hand-off's: a station's port 5906 can lead to one console only.
    const newest = new Map<string, { consolePort: number; handedAt: number }>();
    let wakeAt: number | undefined;
    for (const vm of vms) {
      const s = vm.record.session;
      if (vm.record.state !== 'in-use' || !vm.active || s === undefined || vm.spicePort === undefined) continue;
      const closesAt = s.connectedAt === undefined ? undefined : s.connectedAt + st.forwardGraceMs;
      if (closesAt !== undefined && now >= closesAt) continue;
      const seen = newest.get(s.station);
      if (seen !== undefined) this.#deps.logger.warning('forward-conflict', { station: s.station, vm: vm.name });
      if (seen === undefined || s.handedAt > seen.handedAt) newest.set(s.station, { consolePort: vm.spicePort, handedAt: s.handedAt });
      if (closesAt !== undefined) wakeAt = Math.min(wakeAt ?? closesAt, closesAt);
    }
    const forwards = [...newest].map(([station, f]) => ({ station, consolePort: f.consolePort })).sort((a, b) => a.consolePort - b.consolePort);
    const spec: FirewallSpec = {
      table: st.nftTable,
      lanInterface: st.interface,
      lanAddress: st.address,
      spicePort: st.spicePort,
      consoleAddress: st.consoleAddress,
      consolePorts: this.#config.pools.filter((p) => p.size > 0).map((p) => ({ from: p.spicePortBase, to: p.spicePortBase + p.size - 1 })),
      forwards,
    };
    const key = JSON.stringify(spec);
    await this.#firewallLane.run(async () => {
      if (key === this.#appliedFirewall) return;
      await firewall.apply(spec);
      this.#appliedFirewall = key;
      this.#deps.logger.info('firewall-applied', { forwards: forwards.map((f) => `${f.station}>${f.consolePort}`).join(',') || 'none' });
    });
    return wakeAt;
  }

  #desired(): Desired {
    const st = this.#config.stations;
    return {
      maxParallelBoots: this.#config.maxParallelBoots,
      handoffTimeoutMs: st ? st.connectWaitMs + HANDOFF_SLACK_MS : Number.POSITIVE_INFINITY,
      pools: this.#config.pools.map((p) => {
        const h = this.#healthOf(p.name);
        return {
          name: p.name,
          size: p.size,
          bootTimeoutMs: p.bootTimeoutMs,
          canClone: h.goldenProblem === undefined && this.#golden.get(p.name)?.format !== undefined && !this.#diskShort(p.name),
          cloneNotBefore: h.cloneNotBefore,
          limits: p.limits,
          memoryMiB: p.memoryMiB,
          drained: this.#drained.has(p.name),
          golden: p.goldenImage,
        };
      }),
      ...(this.#room.memoryBudgetMiB === undefined ? {} : { memoryBudgetMiB: this.#room.memoryBudgetMiB }),
    };
  }

  #diskShort(pool: string): boolean {
    const free = this.#diskFree.get(pool);
    return free !== undefined && free < this.#config.diskReserveMiB;
  }

  /** Host memory and each pool's disk, once a round; a failed measure gates nothing (and is said once). */
  async #measureHost(): Promise<void> {
    const resources = this.#deps.resources;
    if (!resources) return;
    const reserve = this.#config.memoryReserveMiB;
    try {
      const available = await resources.availableMemoryMiB();
      this.#room = { availableMemoryMiB: available, memoryBudgetMiB: available - reserve, memoryReserveMiB: reserve };
      for (const p of this.#config.pools) this.#diskFree.set(p.name, await resources.freeDiskMiB(p.storageDir));
    } catch (e) {
      if (this.#room.memoryBudgetMiB !== undefined || this.#diskFree.size > 0) this.#deps.logger.warning('host-resources-unknown', { error: asTabulaError(e).message });
      this.#room = { memoryReserveMiB: reserve };
      this.#diskFree.clear();
    }
  }

  /** Which pools lack a VM they cannot have for want of memory or disk, said once per change. */
  #judgeResources(vms: readonly ObservedVm[]): void {
    for (const p of this.#config.pools) {
      const short = vms.filter((vm) => vm.record.pool === p.name).length < p.size;
      const free = this.#diskFree.get(p.name);
      const problem = short ? resourceProblem(p, this.#room, { ...(free === undefined ? {} : { freeMiB: free }), reserveMiB: this.#config.diskReserveMiB }) : undefined;
      const had = this.#resourceProblems.get(p.name);
      if (problem === undefined) this.#resourceProblems.delete(p.name);
      else this.#resourceProblems.set(p.name, problem);
      // Judged by kind, not by the exact figures, which change every round.
      const kind = (x: string | undefined) => x?.split(':')[0];
      if (problem !== undefined && kind(problem) !== kind(had)) this.#deps.logger.err('pool-waiting-for-resources', { pool: p.name, reason: problem });
      if (problem === undefined && had !== undefined) this.#deps.logger.notice('pool-resources-available', { pool: p.name });
    }
  }

  async #execute(step: Step): Promise<boolean> {
    const { logger, clock } = this.#deps;
    const pool = stepPool(step);
    try {
      await executeStep(step, { config: this.#config, locks: this.locks, goldenFormat: (p) => this.#golden.get(p)?.format, now: clock.now() }, this.#deps);
    } catch (e) {
      const err = asTabulaError(e, 'libvirt-failed');
      if (err.code === 'conflict') {
        // Someone else changed the VM first; the next round sees it as it is now.
        logger.debug('step-skipped', { ...stepFields(step), reason: err.message });
        return true;
      }
      logger.err('step-failed', { ...stepFields(step), code: err.code, error: err.message });
      this.#deps.metrics?.failed(err.code, step.kind);
      // A failed start leaves a booting VM that is not running; its removal counts the failure, once.
      if (step.kind === 'start-vm') this.#startErrors.set(step.name, `start-vm failed: ${err.message}`);
      else this.#fail(pool, `${step.kind} failed: ${err.message}`, clock.now(), this.#cloneImage(step));
      // A clone that cannot be made may mean the golden image went away: look again.
      if (step.kind === 'clone-disk') this.#golden.delete(pool);
      return false;
    }
    logger.info(stepEvent(step), stepFields(step, clock.now()));
    if ((step.kind === 'destroy-vm' || step.kind === 'undefine-vm') && step.expect.state === 'in-use') {
      const session = step.kind === 'destroy-vm' ? step.record.session?.id : step.session;
      if (session !== undefined) this.#sessionEnded({ session, vm: step.name, cause: sessionEndCause(step) });
    }
    if (step.kind === 'mark-clean') {
      this.#health.set(pool, afterSuccess(this.#healthOf(pool)));
      this.#cloneListeners.emit({ pool, ok: true, ...(step.record.golden === undefined ? {} : { image: step.record.golden }) });
      const now = clock.now();
      this.#deps.metrics?.cloneReady(pool, now - step.record.createdAt);
      const takenAt = this.#takenAt.get(step.name);
      if (takenAt !== undefined) this.#deps.metrics?.recycled(pool, now - takenAt);
      this.#takenAt.delete(step.name);
    }
    if ((step.kind === 'destroy-vm' || step.kind === 'undefine-vm') && !isCloneFailure(step.reason) && !this.#takenAt.has(step.name)) {
      this.#takenAt.set(step.name, clock.now());
    }
    if ((step.kind === 'destroy-vm' || step.kind === 'undefine-vm') && isCloneFailure(step.reason)) {
      const cause = step.reason === 'boot-timeout' ? 'the guest did not report up in time' : (this.#startErrors.get(step.name) ?? 'the VM stopped while booting');
      this.#fail(pool, cause, clock.now(), step.record?.golden);
    }
    if (step.kind === 'undefine-vm' || step.kind === 'mark-clean') this.#startErrors.delete(step.name);
    return true;
  }

  /** The image a failed step was making a clone of; undefined for steps that make none (they say nothing of the image). */
  #cloneImage(step: Step): string | undefined {
    if (step.kind === 'define-vm') return step.record.golden;
    return step.kind === 'clone-disk' ? this.#config.pools.find((p) => p.name === step.pool)?.goldenImage : undefined;
  }

  #fail(pool: string, reason: string, now: number, image: string | undefined): void {
    const before = verdict(this.#healthOf(pool), this.#policy);
    const after = afterFailure(this.#healthOf(pool), reason, now, this.#policy);
    this.#health.set(pool, after);
    const v = verdict(after, this.#policy);
    if (before.healthy && !v.healthy) this.#deps.logger.err('pool-unhealthy', { pool, reason: v.reason });
    this.#cloneListeners.emit({ pool, ok: false, reason, ...(image === undefined ? {} : { image }) });
  }

  async #checkGoldenImages(now: number): Promise<void> {
    for (const pool of this.#config.pools) {
      const known = this.#golden.get(pool.name);
      if (known?.format !== undefined) continue;
      if (known && now - known.checkedAt < GOLDEN_RECHECK_MS) continue;
      let problem: string | undefined;
      let format: string | undefined;
      try {
        const info = await this.#deps.disks.inspect(pool.goldenImage);
        problem = goldenProblem(pool.goldenImage, info);
        if (problem === undefined) format = info.format;
      } catch (e) {
        problem = asTabulaError(e, 'golden-image-invalid').message;
      }
      const had = this.#healthOf(pool.name).goldenProblem;
      this.#golden.set(pool.name, format === undefined ? { checkedAt: now } : { format, checkedAt: now });
      this.#health.set(pool.name, withGoldenProblem(this.#healthOf(pool.name), problem));
      if (problem !== undefined && problem !== had) this.#deps.logger.err('golden-image-unusable', { pool: pool.name, reason: problem });
      if (problem === undefined && had !== undefined) this.#deps.logger.notice('golden-image-usable', { pool: pool.name, image: pool.goldenImage });
    }
  }

  #healthOf(pool: string): PoolHealth {
    return this.#health.get(pool) ?? FRESH_HEALTH;
  }

  #degrade(err: TabulaError): void {
    if (this.#status.state !== 'degraded') this.#deps.logger.err('libvirt-unreachable', { code: err.code, error: err.message });
    this.#setStatus({ ...this.#status, state: 'degraded', reason: `libvirt unreachable: ${err.message}`, line: `degraded: libvirt unreachable: ${err.message}` });
  }

  #publish(vms: readonly ObservedVm[]): void {
    if (this.#status.state === 'degraded') this.#deps.logger.notice('libvirt-reachable', {});
    const pools = this.#config.pools.map((p) => {
      const v = verdict(this.#healthOf(p.name), this.#policy);
      const waiting = this.#resourceProblems.get(p.name);
      const problem = this.#healthOf(p.name).goldenProblem;
      const image = {
        goldenImage: p.goldenImage,
        ...(p.goldenSwitch?.previous === undefined ? {} : { previousGoldenImage: p.goldenSwitch.previous }),
        goldenConfirmed: p.goldenSwitch?.confirmed ?? true,
        ...(problem === undefined ? {} : { problem }),
        ...(p.kernel === undefined ? {} : { kernel: p.kernel }),
      };
      return { ...poolStatus(p.name, p.size, vms, v.healthy && waiting !== undefined ? { healthy: false, reason: waiting } : v, this.#drained.has(p.name), image), timeouts: timeoutsOf(p) };
    });
    this.#setStatus({ state: 'ready', reason: '', pools, line: statusLine(pools) });
  }

  #setStatus(next: SupervisorStatus): void {
    const changed = JSON.stringify(next) !== JSON.stringify(this.#status);
    const lineChanged = next.line !== this.#status.line;
    this.#status = next;
    if (lineChanged) this.#deps.notifier.status(next.line);
    if (changed) this.#listeners.emit(next);
  }
}
