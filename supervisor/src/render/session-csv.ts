import { durations, type SessionLogEntry } from '../domain/session-log.js';

export const SESSION_CSV_HEADER = [
  'session',
  'station_address',
  'station_mac',
  'station_name',
  'pool',
  'vm',
  'protocol',
  'requested',
  'handed',
  'connected',
  'ended',
  'reason',
  'wait_s',
  'connect_s',
  'session_s',
] as const;

/**
 * The session log as CSV: a header, then one row per entry in the order given.
 * Times are ISO-8601 UTC, durations seconds with 3 decimals; a value that is
 * not known is an empty field. Fields are quoted as RFC 4180 says, but lines
 * end in "\n" rather than its "\r\n": the file is mostly read with grep, cut
 * and awk, and spreadsheets accept either.
 */
export function renderSessionsCsv(entries: readonly SessionLogEntry[]): string {
  const rows = [SESSION_CSV_HEADER.join(','), ...entries.map((e) => row(e).map(field).join(','))];
  return rows.map((r) => `${r}\n`).join('');
}

function row(e: SessionLogEntry): string[] {
  const d = durations(e);
  return [
    e.session,
    e.station.address,
    e.station.mac ?? '',
    e.station.name ?? '',
    e.pool,
    e.vm,
    e.protocol,
    time(e.requestedAt),
    time(e.handedAt),
    time(e.connectedAt),
    time(e.endedAt),
    e.reason,
    seconds(d.waitMs),
    seconds(d.connectMs),
    seconds(d.sessionMs),
  ];
}

function time(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString();
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '' : (ms / 1000).toFixed(3);
}

function field(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
