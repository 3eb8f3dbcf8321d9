/**
 * A snapshot of metrics, as the registry (app/metrics.ts) hands it to the
 * Prometheus renderer (render/prometheus.ts). Plain data: no behaviour here.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** Label name → value. The registry builds them in the metric's declared label order. */
export type Labels = Readonly<Record<string, string>>;

export interface ValueSample {
  readonly labels: Labels;
  readonly value: number;
}

/** `count` observations were ≤ `le` (cumulative, so counts never fall as `le` rises). */
export interface HistogramBucket {
  readonly le: number;
  readonly count: number;
}

export interface HistogramSample {
  readonly labels: Labels;
  /** Finite upper bounds, ascending. The `+Inf` bucket is not listed: it is always `count`. */
  readonly buckets: readonly HistogramBucket[];
  readonly sum: number;
  readonly count: number;
}

export interface ValueFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly samples: readonly ValueSample[];
}

export interface HistogramFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly samples: readonly HistogramSample[];
}

/** Discriminated on `type`, so a histogram's samples can only be histogram samples. */
export type MetricFamily = ValueFamily | HistogramFamily;
