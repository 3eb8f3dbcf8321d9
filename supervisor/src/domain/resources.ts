/** The host's room for more VMs, as the reconciler measured it this round. */
export interface HostRoom {
  /** MemAvailable minus the configured reserve, in MiB; undefined when not measured. */
  readonly memoryBudgetMiB?: number;
  readonly availableMemoryMiB?: number;
  readonly memoryReserveMiB: number;
}

/**
 * Why a pool cannot have the VM it lacks right now, or undefined. A VM is
 * not started when it would take host free memory under the reserve, nor a
 * disk cloned when its filesystem is under the disk reserve.
 */
export function resourceProblem(
  pool: { readonly memoryMiB: number; readonly storageDir: string },
  room: HostRoom,
  disk: { readonly freeMiB?: number; readonly reserveMiB: number },
): string | undefined {
  if (disk.freeMiB !== undefined && disk.freeMiB < disk.reserveMiB) {
    return `disk full: ${disk.freeMiB} MiB free for ${pool.storageDir}, under the ${disk.reserveMiB} MiB reserve; clones wait until space is freed`;
  }
  if (room.memoryBudgetMiB !== undefined && room.memoryBudgetMiB < pool.memoryMiB) {
    return `host memory low: ${room.availableMemoryMiB ?? '?'} MiB available, a VM needs ${pool.memoryMiB} MiB over the ${room.memoryReserveMiB} MiB reserve; clones wait`;
  }
  return undefined;
}

/**
 * Why a pool may not grow from `from` to `to` VMs on this host, or undefined:
 * the VMs it would add must fit in the memory above the reserve now. Not
 * measured: not judged (the reconciler still waits rather than overcommit).
 */
export function growthProblem(pool: { readonly name: string; readonly memoryMiB: number }, from: number, to: number, room: HostRoom): string | undefined {
  const more = to - from;
  if (more <= 0 || room.memoryBudgetMiB === undefined) return undefined;
  const need = more * pool.memoryMiB;
  if (need <= room.memoryBudgetMiB) return undefined;
  return `pool ${pool.name} cannot grow to ${to} VMs: ${more} more need ${need} MiB of memory, the host has ${Math.max(0, room.memoryBudgetMiB)} MiB above the ${room.memoryReserveMiB} MiB reserve`;
}
