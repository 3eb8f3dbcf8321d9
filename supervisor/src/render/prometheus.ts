import type { Labels, MetricFamily } from '../domain/metrics.js';

/**
 * The Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Families are sorted by name and samples by label values, so the same state
 * always renders the same text: scrapes can be diffed and tests compare strings.
 */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of [...families].sort((a, b) => compareText(a.name, b.name))) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    if (family.type === 'histogram') {
      for (const s of sortByLabels(family.samples)) {
        for (const b of s.buckets) {
          // A listed +Inf bucket would repeat the one written from `count` below.
          if (b.le === Infinity) continue;
          lines.push(`${family.name}_bucket${renderLabels(s.labels, formatNumber(b.le))} ${formatNumber(b.count)}`);
        }
        lines.push(`${family.name}_bucket${renderLabels(s.labels, '+Inf')} ${formatNumber(s.count)}`);
        lines.push(`${family.name}_sum${renderLabels(s.labels)} ${formatNumber(s.sum)}`);
        lines.push(`${family.name}_count${renderLabels(s.labels)} ${formatNumber(s.count)}`);
      }
    } else {
      for (const s of sortByLabels(family.samples)) {
        lines.push(`${family.name}${renderLabels(s.labels)} ${formatNumber(s.value)}`);
      }
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * What Prometheus (Go's ParseFloat) reads: `+Inf`, `-Inf`, `NaN`, otherwise the
 * shortest exact decimal. String() spells integers out up to 1e21 and uses an
 * exponent (`1e+21`, `1e-7`) only beyond, which Go reads too.
 */
export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function renderLabels(labels: Labels, le?: string): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  if (le !== undefined) pairs.push(`le="${le}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function sortByLabels<S extends { readonly labels: Labels }>(samples: readonly S[]): S[] {
  return [...samples].sort((a, b) => compareLabels(a.labels, b.labels));
}

/**
 * By label name, then value. Decimal values (slots, ports) compare as numbers and
 * come before all other text, which keeps this a total order: sorting is
 * deterministic whatever order the samples arrive in.
 */
function compareLabels(a: Labels, b: Labels): number {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(compareText);
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    // A sample without the label at all goes first (only in input the registry never makes).
    if (x === undefined || y === undefined) {
      if (x !== y) return x === undefined ? -1 : 1;
      continue;
    }
    const c = compareValues(x, y);
    if (c !== 0) return c;
  }
  return 0;
}

const DECIMAL = /^-?\d+(\.\d+)?$/;

function compareValues(x: string, y: string): number {
  const xn = DECIMAL.test(x);
  const yn = DECIMAL.test(y);
  if (xn !== yn) return xn ? -1 : 1;
  if (xn && Number(x) !== Number(y)) return Number(x) - Number(y);
  return compareText(x, y);
}

/** Code-unit order, not the locale's: the output must not depend on where it runs. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
