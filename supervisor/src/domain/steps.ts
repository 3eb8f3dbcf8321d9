import type { VmRecord, VmState } from './vm.js';

/** Why a VM is being taken away. Some of them count as a failed clone. */
export type RemovalReason =
  | 'dirty'
  | 'unwanted'
  | 'died'
  | 'died-while-booting'
  | 'boot-timeout'
  | 'session-ended'
  | 'handoff-abandoned'
  | 'idle'
  | 'time-limit'
  | 'wipe'
  | 'inconsistent'
  /** The pool's golden image was switched: a clean VM of the old one is replaced. */
  | 'image-changed';

export function isCloneFailure(reason: RemovalReason): boolean {
  return reason === 'died-while-booting' || reason === 'boot-timeout';
}

/**
 * The version of a VM's record a step was planned against. The executor
 * re-reads the record under the VM's lock and skips the step if it changed
 * (a hand-off or an admin got there first).
 */
export interface Expect {
  readonly state: VmState;
  readonly since: number;
  readonly connectedAt?: number;
}

export function expectOf(record: VmRecord): Expect {
  const c = record.session?.connectedAt;
  return { state: record.state, since: record.stateSince, ...(c === undefined ? {} : { connectedAt: c }) };
}

export function matches(expect: Expect, record: VmRecord | undefined): boolean {
  return record !== undefined && record.state === expect.state && record.stateSince === expect.since && record.session?.connectedAt === expect.connectedAt;
}

/** One side effect, as data. The executor maps each kind to port calls. */
export type Step =
  | { readonly kind: 'define-vm'; readonly name: string; readonly record: VmRecord }
  | { readonly kind: 'clone-disk'; readonly name: string; readonly pool: string; readonly slot: number; readonly expect: Expect }
  | { readonly kind: 'start-vm'; readonly name: string; readonly record: VmRecord; readonly expect: Expect }
  | { readonly kind: 'mark-clean'; readonly name: string; readonly record: VmRecord; readonly expect: Expect }
  | { readonly kind: 'mark-connected'; readonly name: string; readonly record: VmRecord; readonly expect: Expect }
  | { readonly kind: 'destroy-vm'; readonly name: string; readonly record: VmRecord; readonly reason: RemovalReason; readonly expect: Expect }
  | {
      readonly kind: 'undefine-vm';
      readonly name: string;
      readonly pool: string;
      readonly reason: RemovalReason;
      readonly expect: Expect;
      readonly session?: string;
      /** The record as observed: a session in it goes to the event log before the domain is gone. */
      readonly record?: VmRecord;
    }
  | { readonly kind: 'delete-file'; readonly pool: string; readonly file: string };

export type StepKind = Step['kind'];

/** Why a visitor's session ended, as a station is told. */
export type SessionEndCause = 'disconnected' | 'shutdown' | 'not-connected' | 'station' | 'idle' | 'time-limit' | 'admin' | 'wipe' | 'error';

/** The cause to tell a station whose in-use VM is taken away by `step`. */
export function sessionEndCause(step: Step): SessionEndCause {
  if (!('reason' in step)) return 'error';
  return endCauseOf(step.kind, step.reason);
}

/** Why a session ended, from how its VM is removed. */
export function endCauseOf(kind: StepKind, reason: RemovalReason): SessionEndCause {
  switch (reason) {
    case 'session-ended':
      // Stopped by itself (power-off, reboot, crash) vs. the client gone while it ran.
      return kind === 'undefine-vm' ? 'shutdown' : 'disconnected';
    case 'handoff-abandoned':
      return 'not-connected';
    case 'idle':
    case 'time-limit':
    case 'wipe':
      return reason;
    case 'unwanted':
    case 'dirty':
      return 'admin';
    default:
      return 'error';
  }
}
