import type { VmRecord } from './vm.js';

/** Why a VM is being taken away. Some of them count as a failed clone. */
export type RemovalReason =
  | 'dirty'
  | 'unwanted'
  | 'died'
  | 'died-while-booting'
  | 'boot-timeout'
  | 'inconsistent';

export function isCloneFailure(reason: RemovalReason): boolean {
  return reason === 'died-while-booting' || reason === 'boot-timeout';
}

/** One side effect, as data. The executor maps each kind to port calls. */
export type Step =
  | { readonly kind: 'define-vm'; readonly name: string; readonly record: VmRecord }
  | { readonly kind: 'clone-disk'; readonly name: string; readonly pool: string; readonly slot: number }
  | { readonly kind: 'start-vm'; readonly name: string; readonly record: VmRecord }
  | { readonly kind: 'mark-clean'; readonly name: string; readonly record: VmRecord }
  | { readonly kind: 'destroy-vm'; readonly name: string; readonly record: VmRecord; readonly reason: RemovalReason }
  | { readonly kind: 'undefine-vm'; readonly name: string; readonly pool: string; readonly reason: RemovalReason }
  | { readonly kind: 'delete-file'; readonly pool: string; readonly file: string };

export type StepKind = Step['kind'];
