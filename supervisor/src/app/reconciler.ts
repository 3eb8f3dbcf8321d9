import type { Config } from '../config/config.js';
import { asTabulaError, TabulaError } from '../domain/errors.js';
import { goldenProblem } from '../domain/golden.js';
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
import { poolStatus, statusLine, type PoolStatus } from '../domain/status.js';
import { isCloneFailure, sessionEndCause, type SessionEndCause, type Step } from '../domain/steps.js';
import { isOwned, withState, type ObservedVm } from '../domain/vm.js';
import type { Clock } from '../ports/clock.js';
import type { FirewallSpec } from '../domain/firewall.js';
import type { Conntrack, Firewall } from '../ports/firewall.js';
import type { Disposable } from '../ports/disposable.js';
import type { Logger } from '../ports/logger.js';
import type { Notifier } from '../ports/notifier.js';
import { executeStep, type ExecutorDeps } from './executor.js';
import { KeyedLocks } from './keyed-locks.js';
import { Lane } from './lane.js';
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

export interface ReconcilerDeps extends ExecutorDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly notifier: Notifier;
  /** Needed only with a station LAN. */
  readonly firewall?: Firewall;
  readonly conntrack?: Conntrack;
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
  readonly #listeners = new Set<(s: SupervisorStatus) => void>();
  readonly #sessionListeners = new Set<(e: SessionEnded) => void>();
  /** Why a start failed, so the removal that follows reports the real cause. */
  readonly #startErrors = new Map<string, string>();
  #status: SupervisorStatus = { state: 'starting', reason: '', pools: [], line: 'starting' };
  #wake = new AbortController();
  readonly #firewallLane = new Lane();
  #appliedFirewall: string | undefined;

  constructor(config: Config, deps: ReconcilerDeps, policy: HealthPolicy = DEFAULT_HEALTH_POLICY) {
    this.#config = config;
    this.#deps = deps;
    this.#policy = policy;
    for (const p of config.pools) this.#health.set(p.name, FRESH_HEALTH);
  }

  status(): SupervisorStatus {
    return this.#status;
  }

  onStatus(listener: (s: SupervisorStatus) => void): Disposable {
    this.#listeners.add(listener);
    return { dispose: () => this.#listeners.delete(listener) };
  }

  /** Sessions that ended because their VM was taken away (client gone, guest stopped, admin). */
  onSessionEnded(listener: (e: SessionEnded) => void): Disposable {
    this.#sessionListeners.add(listener);
    return { dispose: () => this.#sessionListeners.delete(listener) };
  }

  #sessionEnded(e: SessionEnded): void {
    for (const l of this.#sessionListeners) {
      try {
        l(e);
      } catch (err) {
        this.#deps.logger.err('session-listener-failed', { error: asTabulaError(err).message });
      }
    }
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
      this.#config = next;
      const names = new Set(next.pools.map((p) => p.name));
      for (const name of [...this.#health.keys()]) if (!names.has(name)) this.#health.delete(name);
      // Golden images are looked at again: the path or the file may have changed.
      this.#golden.clear();
      for (const p of next.pools) if (!this.#health.has(p.name)) this.#health.set(p.name, FRESH_HEALTH);
    });
    this.poke();
  }

  /** Marks a VM dirty so that it is destroyed and replaced by a fresh clone. */
  async recycle(name: string): Promise<void> {
    try {
      await this.locks.run(name, async () => {
        const vm = await this.#deps.libvirt.getDomain(name);
        if (!vm?.record) throw new TabulaError('not-found', `no Tabula VM named "${name}"`);
        if (vm.record.state === 'dirty') return;
        await this.#deps.libvirt.setVmRecord(name, withState(vm.record, 'dirty', this.#deps.clock.now()));
        this.#deps.logger.notice('vm-marked-dirty', { vm: name, pool: vm.record.pool, was: vm.record.state });
        const session = vm.record.state === 'in-use' ? vm.record.session?.id : undefined;
        if (session !== undefined) this.#sessionEnded({ session, vm: name, cause: 'admin' });
      });
    } finally {
      this.poke();
    }
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
    let observed: Observed;
    try {
      observed = await this.#observe();
    } catch (e) {
      this.#degrade(asTabulaError(e, 'libvirt-unavailable'));
      return { planned: 0, succeeded: 0, booting: false };
    }
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
    const conntrack = this.#deps.conntrack;
    if (!st || !conntrack) return vms;
    return Promise.all(
      vms.map(async (vm) => {
        if (vm.record.state !== 'in-use' || !vm.active || vm.spicePort === undefined) return vm;
        const flows = await conntrack.established(st.consoleAddress, vm.spicePort);
        return { ...vm, clientConnected: flows.length > 0 };
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
          canClone: h.goldenProblem === undefined && this.#golden.get(p.name)?.format !== undefined,
          cloneNotBefore: h.cloneNotBefore,
        };
      }),
    };
  }

  async #execute(step: Step): Promise<boolean> {
    const { logger, clock } = this.#deps;
    const pool = stepPool(step);
    try {
      await executeStep(step, { config: this.#config, locks: this.locks, goldenFormat: (p) => this.#golden.get(p)?.format }, this.#deps);
    } catch (e) {
      const err = asTabulaError(e, 'libvirt-failed');
      if (err.code === 'conflict') {
        // Someone else changed the VM first; the next round sees it as it is now.
        logger.debug('step-skipped', { ...stepFields(step), reason: err.message });
        return true;
      }
      logger.err('step-failed', { ...stepFields(step), code: err.code, error: err.message });
      // A failed start leaves a booting VM that is not running; its removal counts the failure, once.
      if (step.kind === 'start-vm') this.#startErrors.set(step.name, `start-vm failed: ${err.message}`);
      else this.#fail(pool, `${step.kind} failed: ${err.message}`, clock.now());
      // A clone that cannot be made may mean the golden image went away: look again.
      if (step.kind === 'clone-disk') this.#golden.delete(pool);
      return false;
    }
    logger.info(stepEvent(step), stepFields(step, clock.now()));
    if ((step.kind === 'destroy-vm' || step.kind === 'undefine-vm') && step.expect.state === 'in-use') {
      const session = step.kind === 'destroy-vm' ? step.record.session?.id : step.session;
      if (session !== undefined) this.#sessionEnded({ session, vm: step.name, cause: sessionEndCause(step) });
    }
    if (step.kind === 'mark-clean') this.#health.set(pool, afterSuccess(this.#healthOf(pool)));
    if ((step.kind === 'destroy-vm' || step.kind === 'undefine-vm') && isCloneFailure(step.reason)) {
      const cause = step.reason === 'boot-timeout' ? 'the guest did not report up in time' : (this.#startErrors.get(step.name) ?? 'the VM stopped while booting');
      this.#fail(pool, cause, clock.now());
    }
    if (step.kind === 'undefine-vm' || step.kind === 'mark-clean') this.#startErrors.delete(step.name);
    return true;
  }

  #fail(pool: string, reason: string, now: number): void {
    const before = verdict(this.#healthOf(pool), this.#policy);
    const after = afterFailure(this.#healthOf(pool), reason, now, this.#policy);
    this.#health.set(pool, after);
    const v = verdict(after, this.#policy);
    if (before.healthy && !v.healthy) this.#deps.logger.err('pool-unhealthy', { pool, reason: v.reason });
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
    const pools = this.#config.pools.map((p) => poolStatus(p.name, p.size, vms, verdict(this.#healthOf(p.name), this.#policy)));
    this.#setStatus({ state: 'ready', reason: '', pools, line: statusLine(pools) });
  }

  #setStatus(next: SupervisorStatus): void {
    const changed = JSON.stringify(next) !== JSON.stringify(this.#status);
    const lineChanged = next.line !== this.#status.line;
    this.#status = next;
    if (lineChanged) this.#deps.notifier.status(next.line);
    if (!changed) return;
    for (const l of this.#listeners) {
      try {
        l(next);
      } catch (e) {
        // A broken subscriber (e.g. the API) must not stop the pool from being kept.
        this.#deps.logger.err('status-listener-failed', { error: asTabulaError(e).message });
      }
    }
  }
}
