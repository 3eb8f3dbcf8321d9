import { durations, type SessionLogEntry } from '../domain/session-log.js';
import { VM_STATES } from '../domain/vm.js';
import type { Disposable } from '../ports/disposable.js';
import type { Metrics } from './metrics.js';
import type { SupervisorStatus } from './reconciler.js';

/** What the reconciler and dispatcher report as it happens; the rest is read from status at a scrape. */
export interface MetricsSink {
  handedOut(pool: string, protocol: string, waitMs: number): void;
  connected(pool: string, connectMs: number): void;
  cloneReady(pool: string, cloneMs: number): void;
  /** A slot's VM was taken away and its replacement is clean again. */
  recycled(pool: string, ms: number): void;
  sessionEnded(entry: SessionLogEntry): void;
  /** Something failed with a TabulaError code; `where` is the step kind or the station protocol. */
  failed(code: string, where: string): void;
}

export interface MetricsSources {
  status(): SupervisorStatus;
  /** Stations waiting per pool. */
  queueLengths(): ReadonlyMap<string, number>;
}

// Hand-offs are sub-second when a VM is clean and minutes when the queue is long.
const WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
// Clones boot in seconds under KVM, tens of seconds under TCG or with a big guest.
const BOOT_BUCKETS = [1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300];
const SESSION_BUCKETS = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];

/** Tabula's metrics, in Prometheus terms (`tabula_*`). */
export class SupervisorMetrics implements MetricsSink {
  readonly #handoffs;
  readonly #handoffWait;
  readonly #connect;
  readonly #clone;
  readonly #recycle;
  readonly #sessions;
  readonly #sessionLength;
  readonly #failures;
  readonly #handoffWatchers = new Set<(pool: string, waitMs: number) => void>();

  constructor(metrics: Metrics, sources: MetricsSources) {
    const vms = metrics.gauge('tabula_vms', 'VMs per pool and state.', ['pool', 'state']);
    const size = metrics.gauge('tabula_pool_size', 'VMs each pool is configured to keep.', ['pool']);
    const healthy = metrics.gauge('tabula_pool_healthy', '1 while the pool can make clones, 0 when it cannot (see the supervisor status).', ['pool']);
    const queue = metrics.gauge('tabula_queue_length', 'Stations waiting for a VM of the pool.', ['pool']);
    const up = metrics.gauge('tabula_supervisor_state', '1 for the state the supervisor is in (starting, ready, degraded).', ['state']);
    this.#handoffs = metrics.counter('tabula_handoffs_total', 'VMs handed to stations.', ['pool', 'protocol']);
    this.#handoffWait = metrics.histogram('tabula_handoff_seconds', 'From a station asking to its VM handed over (the queue wait included).', ['pool'], WAIT_BUCKETS);
    this.#connect = metrics.histogram('tabula_connect_seconds', "From hand-off to the station's Spice client on the console.", ['pool'], WAIT_BUCKETS);
    this.#clone = metrics.histogram('tabula_clone_seconds', 'From a clone defined to its guest up (clean).', ['pool'], BOOT_BUCKETS);
    this.#recycle = metrics.histogram('tabula_recycle_seconds', 'From a used VM taken away to a fresh clone clean in its slot.', ['pool'], BOOT_BUCKETS);
    this.#sessions = metrics.counter('tabula_sessions_ended_total', 'Sessions ended, by why.', ['pool', 'reason']);
    this.#sessionLength = metrics.histogram('tabula_session_seconds', "Visitors' time on the desktop, connected to ended.", ['pool'], SESSION_BUCKETS);
    this.#failures = metrics.counter('tabula_failures_total', 'Failures by error code and where they happened.', ['code', 'where']);
    metrics.onCollect(() => {
      const s = sources.status();
      const waiting = sources.queueLengths();
      for (const g of [vms, size, healthy, queue, up]) g.reset();
      for (const state of ['starting', 'ready', 'degraded']) up.set({ state }, s.state === state ? 1 : 0);
      for (const p of s.pools) {
        for (const state of VM_STATES) vms.set({ pool: p.name, state }, p.counts[state] ?? 0);
        size.set({ pool: p.name }, p.size);
        healthy.set({ pool: p.name }, p.healthy ? 1 : 0);
        queue.set({ pool: p.name }, waiting.get(p.name) ?? 0);
      }
    });
  }

  handedOut(pool: string, protocol: string, waitMs: number): void {
    this.#handoffs.inc({ pool, protocol });
    this.#handoffWait.observe({ pool }, waitMs / 1000);
    for (const w of this.#handoffWatchers) {
      try {
        w(pool, waitMs);
      } catch {
        // A watcher (the admin page's history) must never fail a hand-off.
      }
    }
  }

  /** Also tells `watcher` of each hand-off's wait, as Prometheus sees it (the admin page plots it). */
  watchHandoffs(watcher: (pool: string, waitMs: number) => void): Disposable {
    this.#handoffWatchers.add(watcher);
    return { dispose: () => this.#handoffWatchers.delete(watcher) };
  }

  connected(pool: string, connectMs: number): void {
    this.#connect.observe({ pool }, connectMs / 1000);
  }

  cloneReady(pool: string, cloneMs: number): void {
    this.#clone.observe({ pool }, cloneMs / 1000);
  }

  recycled(pool: string, ms: number): void {
    this.#recycle.observe({ pool }, ms / 1000);
  }

  sessionEnded(entry: SessionLogEntry): void {
    this.#sessions.inc({ pool: entry.pool, reason: entry.reason });
    const used = durations(entry).sessionMs;
    if (used !== undefined) this.#sessionLength.observe({ pool: entry.pool }, used / 1000);
  }

  failed(code: string, where: string): void {
    this.#failures.inc({ code, where });
  }
}
