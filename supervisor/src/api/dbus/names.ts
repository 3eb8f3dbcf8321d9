export const BUS_NAME = 'org.tabula.Supervisor1';
export const ROOT_PATH = '/org/tabula/Supervisor1';
export const ROOT_IFACE = 'org.tabula.Supervisor1';
export const POOL_IFACE = 'org.tabula.Supervisor1.Pool';
export const VM_IFACE = 'org.tabula.Supervisor1.Vm';
export const SESSION_IFACE = 'org.tabula.Supervisor1.Session';
export const ERROR_PREFIX = 'org.tabula.Supervisor1.Error';

/** Object path element for a name: anything but [A-Za-z0-9] becomes _xx (hex), as systemd does. */
export function pathElement(name: string): string {
  return name.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The name a path element stands for (the inverse of pathElement). */
export function nameOfElement(element: string): string {
  return element.replace(/_([0-9a-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export const poolPath = (pool: string): string => `${ROOT_PATH}/pool/${pathElement(pool)}`;
export const vmPath = (vm: string): string => `${ROOT_PATH}/vm/${pathElement(vm)}`;
export const sessionPath = (id: string): string => `${ROOT_PATH}/session/${pathElement(id)}`;

/** D-Bus error name for a TabulaError code: not-found → org.tabula.Supervisor1.Error.NotFound. */
export function errorName(code: string): string {
  return `${ERROR_PREFIX}.${code.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())}`;
}

/** The TabulaError code of a D-Bus error name of ours (the inverse of errorName); undefined for others. */
export function codeOfErrorName(name: string): string | undefined {
  if (!name.startsWith(`${ERROR_PREFIX}.`)) return undefined;
  return name.slice(ERROR_PREFIX.length + 1).replace(/[A-Z]/g, (c, i: number) => (i > 0 ? '-' : '') + c.toLowerCase());
}
