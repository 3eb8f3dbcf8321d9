import { durations, type SessionLogEntry } from '../domain/session-log.js';
import { TabulaError } from '../domain/errors.js';
import { table } from './format.js';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--since` for people: a duration back from now (`90m`, `12h`, `7d`), or a
 * date or date-time (`2026-11-20`, `2026-11-20T08:00`, local time unless it
 * says otherwise).
 */
export function parseSince(text: string, now: number): number {
  const rel = /^(\d+)([smhd])$/.exec(text);
  if (rel) return now - Number(rel[1]) * (UNITS[rel[2] as string] ?? 0);
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?(Z|[+-]\d{2}:?\d{2})?$/.test(text)) {
    // A bare date is local midnight, as people mean it (Date would take it as UTC).
    const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00` : text.replace(' ', 'T'));
    if (!Number.isNaN(t)) return t;
  }
  throw new TabulaError('invalid-argument', `--since ${JSON.stringify(text)}: expected a duration back from now (30m, 12h, 7d) or a date (2026-11-20, 2026-11-20T08:00)`);
}

function clock(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function span(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The session log as a table for people, oldest first. */
export function formatSessions(entries: readonly SessionLogEntry[]): string {
  if (entries.length === 0) return 'no sessions\n';
  const rows = entries.map((e) => {
    const d = durations(e);
    const station = e.station.name ? `${e.station.name} (${e.station.address})` : e.station.address;
    return [clock(e.endedAt), station, e.pool, e.vm, span(d.waitMs), span(d.sessionMs), e.reason];
  });
  return table([['ENDED', 'STATION', 'POOL', 'VM', 'WAITED', 'USED', 'REASON'], ...rows]);
}
