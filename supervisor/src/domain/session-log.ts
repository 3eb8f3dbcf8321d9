import type { SessionRecord } from './vm.js';

/**
 * The event log's record of one session (the Virtual Distro Dispatcher's
 * "event log"): who had which VM, when, and why it ended. Written once, when
 * the session's VM goes away, from the VM's own record in libvirt.
 */
export interface StationIdentity {
  /** IPv4 address on the station LAN. */
  readonly address: string;
  /** Ethernet address, when the server's neighbour table knew it. */
  readonly mac?: string;
  /** The name the station gave (v1 HELLO) or its DHCP reservation's. */
  readonly name?: string;
}

export interface SessionLogEntry {
  readonly session: string;
  readonly station: StationIdentity;
  readonly pool: string;
  readonly vm: string;
  readonly protocol: 'v0' | 'v1';
  /** When the station asked (ms since epoch); absent when not known. */
  readonly requestedAt?: number;
  readonly handedAt: number;
  /** When the station's Spice client was first on the console; absent if it never was. */
  readonly connectedAt?: number;
  readonly endedAt: number;
  /** Why it ended: a SessionEndCause (idle, time-limit, station, disconnected, shutdown, admin, wipe, not-taken…). */
  readonly reason: string;
}

export interface SessionDurations {
  /** Request to hand-off: time spent in the queue. */
  readonly waitMs?: number;
  /** Hand-off to connected. */
  readonly connectMs?: number;
  /** Connected to ended: the visitor's time on the desktop. */
  readonly sessionMs?: number;
}

export function durations(e: SessionLogEntry): SessionDurations {
  return {
    ...(e.requestedAt === undefined ? {} : { waitMs: Math.max(0, e.handedAt - e.requestedAt) }),
    ...(e.connectedAt === undefined ? {} : { connectMs: Math.max(0, e.connectedAt - e.handedAt), sessionMs: Math.max(0, e.endedAt - e.connectedAt) }),
  };
}

/** The log entry for a session as its VM's record holds it. */
export function logEntryOf(vm: string, pool: string, s: SessionRecord, endedAt: number, reason: string): SessionLogEntry {
  return {
    session: s.id,
    station: { address: s.station, ...(s.stationMac === undefined ? {} : { mac: s.stationMac }), ...(s.stationName === undefined ? {} : { name: s.stationName }) },
    pool,
    vm,
    protocol: s.protocol,
    ...(s.requestedAt === undefined ? {} : { requestedAt: s.requestedAt }),
    handedAt: s.handedAt,
    ...(s.connectedAt === undefined ? {} : { connectedAt: s.connectedAt }),
    endedAt: s.endedAt ?? endedAt,
    reason: s.endReason ?? reason,
  };
}
