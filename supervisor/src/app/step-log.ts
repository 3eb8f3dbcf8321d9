import type { Fields } from '../ports/logger.js';
import type { Step, StepKind } from '../domain/steps.js';

const EVENTS: Record<StepKind, string> = {
  'define-vm': 'vm-defined',
  'clone-disk': 'disk-cloned',
  'start-vm': 'vm-started',
  'mark-clean': 'vm-clean',
  'mark-connected': 'session-connected',
  'destroy-vm': 'vm-destroyed',
  'undefine-vm': 'vm-undefined',
  'delete-file': 'file-deleted',
};

/** The past-tense event logged once a step has been carried out. */
export function stepEvent(step: Step): string {
  return EVENTS[step.kind];
}

export function stepPool(step: Step): string {
  switch (step.kind) {
    case 'define-vm':
    case 'start-vm':
    case 'mark-clean':
    case 'mark-connected':
    case 'destroy-vm':
      return step.record.pool;
    case 'clone-disk':
    case 'undefine-vm':
    case 'delete-file':
      return step.pool;
  }
}

export function stepFields(step: Step, now?: number): Fields {
  const base: Record<string, string | number> = { step: step.kind, pool: stepPool(step) };
  if ('name' in step) base['vm'] = step.name;
  if ('reason' in step) base['reason'] = step.reason;
  if (step.kind === 'delete-file') base['file'] = step.file;
  if (step.kind === 'mark-clean' && now !== undefined) base['clone_to_clean_ms'] = now - step.record.createdAt;
  // A VM that served a visitor: who, since when, for how long.
  const session = 'record' in step ? step.record?.session : undefined;
  if (session && step.kind === 'destroy-vm') {
    base['station'] = session.station;
    base['session'] = session.id;
    base['handed'] = new Date(session.handedAt).toISOString();
    if (session.connectedAt !== undefined) {
      base['connected'] = new Date(session.connectedAt).toISOString();
      if (now !== undefined) base['session_s'] = Math.round((now - session.connectedAt) / 1000);
    }
  }
  return base;
}
