import { vmName } from './vm.js';

/** File names in a pool's storage directory that belong to a VM slot. */
export interface VmFiles {
  readonly overlay: string;
  readonly overlayTemp: string;
  readonly consoleLog: string;
}

export function vmFiles(pool: string, slot: number): VmFiles {
  const base = vmName(pool, slot);
  return { overlay: `${base}.qcow2`, overlayTemp: `${base}.qcow2.tmp`, consoleLog: `${base}.console.log` };
}

/**
 * Which VM a storage file belongs to, or undefined for files Tabula did not
 * create (those are never touched).
 */
export function ownerOfFile(pool: string, file: string): string | undefined {
  const prefix = `tabula-${pool}-`;
  if (!file.startsWith(prefix)) return undefined;
  const m = /^(\d+)\.(qcow2|qcow2\.tmp|console\.log)$/.exec(file.slice(prefix.length));
  if (!m) return undefined;
  return vmName(pool, Number(m[1]));
}
