/**
 * A pool VM as Tabula records it in the libvirt domain's <metadata>. libvirt
 * is the source of truth: this record is all the supervisor needs to pick up
 * where it left off after a crash.
 */
export const VM_STATES = ['cloning', 'booting', 'clean', 'in-use', 'dirty'] as const;
export type VmState = (typeof VM_STATES)[number];

export function isVmState(s: string): s is VmState {
  return (VM_STATES as readonly string[]).includes(s);
}

/** A visitor's use of a VM, from hand-off to the end. Kept in the VM's record. */
export interface SessionRecord {
  readonly id: string;
  /** The station's IPv4 address on the station LAN. */
  readonly station: string;
  readonly protocol: 'v0' | 'v1';
  readonly handedAt: number;
  /** When the station's Spice client was first seen on the console. From then on the VM is used. */
  readonly connectedAt?: number;
  /** When the station asked for a desktop (before any queueing). */
  readonly requestedAt?: number;
  /** The station's own name (v1 HELLO). */
  readonly stationName?: string;
  /** The station's Ethernet address, as the server's neighbour table knew it at the hand-off. */
  readonly stationMac?: string;
  /** Set when the session is over (the VM is dirty): when and why, for the event log. */
  readonly endedAt?: number;
  readonly endReason?: string;
}

export interface VmRecord {
  readonly pool: string;
  readonly slot: number;
  readonly state: VmState;
  /** When this VM's domain was defined (ms since epoch). */
  readonly createdAt: number;
  /** When it entered `state` (ms since epoch). */
  readonly stateSince: number;
  /** While booting: when to give up waiting for the guest agent (ms since epoch). */
  readonly bootDeadline?: number;
  /** While in-use (and kept when dirty, for the record): who has it. */
  readonly session?: SessionRecord;
  /** The golden image its overlay is backed by (absent on VMs made before images could be switched). */
  readonly golden?: string;
}

/** What libvirt says about one domain. */
export interface DomainSnapshot {
  readonly name: string;
  readonly uuid: string;
  /** Running (libvirt gives running domains an id). */
  readonly active: boolean;
  /** The guest has opened its agent channel: the only proof that it is up. */
  readonly agentConnected: boolean;
  readonly spicePort?: number;
  /** Present only on domains Tabula owns. */
  readonly record?: VmRecord;
}

/** A domain Tabula owns. */
export interface ObservedVm extends DomainSnapshot {
  readonly record: VmRecord;
  /**
   * The last keyboard or mouse input the station reported for the session (v1
   * stations only); undefined where nothing is known.
   */
  readonly lastInputAt?: number;
  /**
   * Whether a Spice client holds an established connection to the console
   * right now; undefined where nobody looked (no station LAN configured).
   */
  readonly clientConnected?: boolean;
}

export function isOwned(d: DomainSnapshot): d is ObservedVm {
  return d.record !== undefined;
}

/** Domain names are deterministic per pool slot, so a slot can never hold two VMs. */
export function vmName(pool: string, slot: number): string {
  return `tabula-${pool}-${slot}`;
}

/** The record in a new state. A clean VM never carries a session; a dirty one keeps it for the log. */
export function withState(record: VmRecord, state: VmState, now: number, extra: Partial<VmRecord> = {}): VmRecord {
  const { bootDeadline: _dropped, session, ...rest } = record;
  const keep = session !== undefined && (state === 'in-use' || state === 'dirty') ? { session } : {};
  return { ...rest, ...keep, ...extra, state, stateSince: now };
}

/** The record of a VM whose session is over: dirty, with when and why kept for the event log. */
export function endedSession(record: VmRecord, now: number, reason: string): VmRecord {
  const s = record.session;
  const session = s === undefined || s.endedAt !== undefined ? s : { ...s, endedAt: now, endReason: reason };
  return withState(record, 'dirty', now, session === undefined ? {} : { session });
}
