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
