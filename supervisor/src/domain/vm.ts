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
}

export function isOwned(d: DomainSnapshot): d is ObservedVm {
  return d.record !== undefined;
}

/** Domain names are deterministic per pool slot, so a slot can never hold two VMs. */
export function vmName(pool: string, slot: number): string {
  return `tabula-${pool}-${slot}`;
}

export function withState(record: VmRecord, state: VmState, now: number, extra: Partial<VmRecord> = {}): VmRecord {
  const { bootDeadline: _dropped, ...rest } = record;
  return { ...rest, ...extra, state, stateSince: now };
}
