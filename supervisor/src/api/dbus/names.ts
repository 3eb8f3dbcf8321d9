export const BUS_NAME = 'org.tabula.Supervisor1';
export const ROOT_PATH = '/org/tabula/Supervisor1';
export const ROOT_IFACE = 'org.tabula.Supervisor1';
export const POOL_IFACE = 'org.tabula.Supervisor1.Pool';
export const VM_IFACE = 'org.tabula.Supervisor1.Vm';
export const ERROR_PREFIX = 'org.tabula.Supervisor1.Error';

/** Object path element for a name: anything but [A-Za-z0-9] becomes _xx (hex), as systemd does. */
export function pathElement(name: string): string {
  return name.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export const poolPath = (pool: string): string => `${ROOT_PATH}/pool/${pathElement(pool)}`;
export const vmPath = (vm: string): string => `${ROOT_PATH}/vm/${pathElement(vm)}`;

/** D-Bus error name for a TabulaError code: not-found → org.tabula.Supervisor1.Error.NotFound. */
export function errorName(code: string): string {
  return `${ERROR_PREFIX}.${code.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())}`;
}
