import { TabulaError } from '../domain/errors.js';
import type { HistogramSample, Labels, MetricFamily, ValueSample } from '../domain/metrics.js';
import type { Disposable } from '../ports/disposable.js';

/**
 * An in-memory metrics registry: counters, gauges and histograms, read with
 * `collect()` when Prometheus scrapes. No I/O; render/prometheus.ts turns the
 * snapshot into text and an adapter serves it.
 *
 * Registering is done once at start-up, so a bad name or a name used twice is
 * a bug ('internal'); wrong labels at an update come from the caller's data
 * ('invalid-argument').
 */

/** The labels of a metric declared with label names `L`: exactly those, no more. */
export type LabelsOf<L extends string> = Readonly<Record<L, string>>;

export interface Counter<L extends string> {
  /** Adds `by` (≥ 0: a counter only goes up). */
  inc(labels?: LabelsOf<L>, by?: number): void;
}

export interface Gauge<L extends string> {
  set(labels: LabelsOf<L>, value: number): void;
  /** Forgets every label set, so a gauge computed from current state can be rebuilt each scrape. */
  reset(): void;
}

export interface Histogram<L extends string> {
  observe(labels: LabelsOf<L>, value: number): void;
}

export interface MetricsOptions {
  /** Told about an `onCollect` callback that threw; the scrape goes on without it. */
  readonly onCollectError?: (error: unknown) => void;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Family {
  readonly name: string;
  collect(): MetricFamily;
}

export class Metrics {
  readonly #families = new Map<string, Family>();
  /** Every name a family writes, histogram suffixes included, so no two families' lines can mix. */
  readonly #taken = new Set<string>();
  readonly #collectors = new Set<() => void>();
  readonly #onCollectError: (error: unknown) => void;

  constructor(options: MetricsOptions = {}) {
    this.#onCollectError = options.onCollectError ?? (() => undefined);
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    const values = new LabelSets<number>(name, labelNames);
    // Without labels there is exactly one series, known from the start: show it at 0 before the first inc.
    if (labelNames.length === 0) values.upsert({}, () => 0);
    this.#register(name, help, labelNames, [name], () => ({ name, help, type: 'counter', samples: valueSamples(values) }));
    return {
      inc(labels = {} as LabelsOf<L>, by = 1) {
        if (!Number.isFinite(by) || by < 0) throw new TabulaError('invalid-argument', `counter ${name} can only go up by a finite amount, not ${by}`);
        values.update(labels, (v) => (v ?? 0) + by);
      },
    };
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    const values = new LabelSets<number>(name, labelNames);
    this.#register(name, help, labelNames, [name], () => ({ name, help, type: 'gauge', samples: valueSamples(values) }));
    return {
      set(labels, value) {
        if (typeof value !== 'number') throw new TabulaError('invalid-argument', `gauge ${name} takes a number, not ${typeof value}`);
        values.update(labels, () => value);
      },
      reset() {
        values.clear();
      },
    };
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): Histogram<L> {
    // +Inf is always there (it is the count), so a listed one adds nothing.
    const bounds = buckets.at(-1) === Infinity ? buckets.slice(0, -1) : [...buckets];
    for (let i = 0; i < bounds.length; i++) {
      const b = bounds[i] as number;
      if (!Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number))) {
        throw new TabulaError('internal', `histogram ${name}: buckets must be finite and strictly increasing, got [${buckets.join(', ')}]`);
      }
    }
    if (labelNames.includes('le' as L)) throw new TabulaError('internal', `histogram ${name}: the label name "le" is reserved for buckets`);
    const empty = (): Observations => ({ counts: bounds.map(() => 0), sum: 0, count: 0 });
    const values = new LabelSets<Observations>(name, labelNames);
    if (labelNames.length === 0) values.upsert({}, empty);
    const suffixed = [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
    this.#register(name, help, labelNames, suffixed, () => ({
      name,
      help,
      type: 'histogram',
      samples: [...values.entries()].map(([labels, o]): HistogramSample => ({
        labels,
        // Stored per bucket; Prometheus wants each bucket to include all below it.
        buckets: cumulative(o.counts).map((count, i) => ({ le: bounds[i] as number, count })),
        sum: o.sum,
        count: o.count,
      })),
    }));
    return {
      observe(labels, value) {
        if (typeof value !== 'number' || Number.isNaN(value)) throw new TabulaError('invalid-argument', `histogram ${name} cannot observe ${value}`);
        const o = values.upsert(labels, empty);
        const i = bounds.findIndex((b) => value <= b);
        if (i >= 0) o.counts[i] = (o.counts[i] ?? 0) + 1;
        o.sum += value;
        o.count += 1;
      },
    };
  }

  /**
   * `fn` runs at the start of every `collect()`, to fill gauges from current
   * state. One that throws is skipped (and reported to `onCollectError`): a
   * broken collector must not cost the whole scrape.
   */
  onCollect(fn: () => void): Disposable {
    // A wrapper, so registering the same function twice gives two independent registrations.
    const entry = (): void => fn();
    this.#collectors.add(entry);
    return { dispose: () => void this.#collectors.delete(entry) };
  }

  /** A snapshot, by metric name; later updates do not change it. */
  collect(): MetricFamily[] {
    for (const fn of [...this.#collectors]) {
      try {
        fn();
      } catch (e) {
        this.#onCollectError(e);
      }
    }
    return [...this.#families.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((f) => f.collect());
  }

  #register(name: string, help: string, labelNames: readonly string[], names: readonly string[], collect: () => MetricFamily): void {
    if (!METRIC_NAME.test(name)) throw new TabulaError('internal', `metric name ${JSON.stringify(name)} is not valid for Prometheus`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new TabulaError('internal', `metric ${name}: label name ${JSON.stringify(l)} is not valid for Prometheus`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new TabulaError('internal', `metric ${name}: a label name is declared twice`);
    const clash = names.find((n) => this.#taken.has(n));
    if (clash !== undefined) throw new TabulaError('internal', `metric ${name} is registered twice (${clash} is already taken)`);
    for (const n of names) this.#taken.add(n);
    this.#families.set(name, { name, collect });
  }
}

interface Observations {
  /** Per bucket, not cumulative: an observation increments one bucket only. */
  readonly counts: number[];
  sum: number;
  count: number;
}

function cumulative(counts: readonly number[]): number[] {
  let total = 0;
  return counts.map((c) => (total += c));
}

function valueSamples(values: LabelSets<number>): ValueSample[] {
  return [...values.entries()].map(([labels, value]) => ({ labels, value }));
}

/** One value per label set, keyed by the label values in declared order. */
class LabelSets<V> {
  readonly #metric: string;
  readonly #names: readonly string[];
  readonly #values = new Map<string, { labels: Labels; value: V }>();

  constructor(metric: string, names: readonly string[]) {
    this.#metric = metric;
    this.#names = names;
  }

  /** The value for `labels`, created with `init` if there is none yet. */
  upsert(labels: Labels, init: () => V): V {
    const key = this.#key(labels);
    const found = this.#values.get(key);
    if (found !== undefined) return found.value;
    const value = init();
    this.#values.set(key, { labels: this.#copy(labels), value });
    return value;
  }

  update(labels: Labels, next: (current: V | undefined) => V): void {
    const key = this.#key(labels);
    const found = this.#values.get(key);
    this.#values.set(key, { labels: found?.labels ?? this.#copy(labels), value: next(found?.value) });
  }

  clear(): void {
    this.#values.clear();
  }

  /** Label objects are frozen and safe to share; values as they are (callers copy mutable ones). */
  entries(): [Labels, V][] {
    return [...this.#values.values()].map((e) => [e.labels, e.value]);
  }

  /** Validates `labels` (exactly the declared names, string values) and returns the map key. */
  #key(labels: Labels): string {
    const given = Object.keys(labels ?? {});
    const extra = given.filter((k) => !this.#names.includes(k));
    const missing = this.#names.filter((k) => !Object.hasOwn(labels ?? {}, k));
    if (extra.length > 0 || missing.length > 0) {
      const parts = [missing.length > 0 ? `missing ${missing.join(', ')}` : '', extra.length > 0 ? `unknown ${extra.join(', ')}` : ''];
      throw new TabulaError('invalid-argument', `metric ${this.#metric}: labels must be exactly [${this.#names.join(', ')}]: ${parts.filter(Boolean).join('; ')}`);
    }
    const values = this.#names.map((n) => labels[n]);
    const bad = this.#names.find((n) => typeof labels[n] !== 'string');
    if (bad !== undefined) throw new TabulaError('invalid-argument', `metric ${this.#metric}: label ${bad} must be a string`);
    return JSON.stringify(values);
  }

  /** Frozen and in declared order, so the caller's object can change afterwards without harm. */
  #copy(labels: Labels): Labels {
    return Object.freeze(Object.fromEntries(this.#names.map((n) => [n, labels[n] as string])));
  }
}
