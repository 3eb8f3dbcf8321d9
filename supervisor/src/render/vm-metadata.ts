import { isVmState, type SessionRecord, type VmRecord } from '../domain/vm.js';
import { esc } from './xml.js';

/** The XML namespace of Tabula's record inside a libvirt domain's <metadata>. */
export const METADATA_NS = 'urn:tabula:vm:1';
export const METADATA_PREFIX = 'tabula';

/** The record as one element; libvirt stores it under METADATA_NS with prefix METADATA_PREFIX. */
export function renderVmRecord(r: VmRecord, withNamespace: boolean): string {
  const ns = withNamespace ? `${METADATA_PREFIX}:vm xmlns:${METADATA_PREFIX}="${METADATA_NS}"` : 'vm';
  const deadline = r.bootDeadline === undefined ? '' : ` boot-deadline="${iso(r.bootDeadline)}"`;
  const s = r.session;
  const session = s
    ? ` session="${esc(s.id)}" station="${esc(s.station)}" protocol="${s.protocol}" handed="${iso(s.handedAt)}"` +
      (s.connectedAt === undefined ? '' : ` connected="${iso(s.connectedAt)}"`) +
      (s.requestedAt === undefined ? '' : ` requested="${iso(s.requestedAt)}"`) +
      (s.stationName === undefined ? '' : ` station-name="${esc(s.stationName)}"`) +
      (s.stationMac === undefined ? '' : ` station-mac="${esc(s.stationMac)}"`) +
      (s.endedAt === undefined ? '' : ` ended="${iso(s.endedAt)}" end-reason="${esc(s.endReason ?? 'error')}"`)
    : '';
  const golden = r.golden === undefined ? '' : ` golden="${esc(r.golden)}"`;
  return `<${ns} pool="${esc(r.pool)}" slot="${r.slot}" state="${r.state}" created="${iso(r.createdAt)}" state-since="${iso(r.stateSince)}"${golden}${deadline}${session}/>`;
}

/**
 * Reads the record back from the attributes libvirt returns. A record that is
 * ours but unreadable comes back as `dirty`, so it is recycled, never reused.
 */
export function parseVmRecord(attrs: Record<string, string>): VmRecord | undefined {
  const pool = attrs['pool'];
  const slot = Number(attrs['slot']);
  if (pool === undefined || !Number.isInteger(slot) || slot < 0) return undefined;
  const state = attrs['state'] ?? '';
  const createdAt = time(attrs['created']) ?? 0;
  const stateSince = time(attrs['state-since']) ?? 0;
  const bootDeadline = time(attrs['boot-deadline']);
  const session = parseSession(attrs);
  const golden = attrs['golden'];
  const extra = { ...(bootDeadline === undefined ? {} : { bootDeadline }), ...(session === undefined ? {} : { session }), ...(golden === undefined ? {} : { golden }) };
  if (!isVmState(state)) return { pool, slot, state: 'dirty', createdAt, stateSince, ...extra };
  return { pool, slot, state, createdAt, stateSince, ...extra };
}

function parseSession(attrs: Record<string, string>): SessionRecord | undefined {
  const id = attrs['session'];
  const station = attrs['station'];
  const handedAt = time(attrs['handed']);
  if (id === undefined || station === undefined || handedAt === undefined) return undefined;
  const connectedAt = time(attrs['connected']);
  const requestedAt = time(attrs['requested']);
  const endedAt = time(attrs['ended']);
  const protocol = attrs['protocol'] === 'v1' ? 'v1' : 'v0';
  return {
    id,
    station,
    protocol,
    handedAt,
    ...(connectedAt === undefined ? {} : { connectedAt }),
    ...(requestedAt === undefined ? {} : { requestedAt }),
    ...(attrs['station-name'] === undefined ? {} : { stationName: attrs['station-name'] }),
    ...(attrs['station-mac'] === undefined ? {} : { stationMac: attrs['station-mac'] }),
    ...(endedAt === undefined ? {} : { endedAt, endReason: attrs['end-reason'] ?? 'error' }),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function time(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}
