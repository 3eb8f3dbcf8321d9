/** What the host has left for new VMs. */
export interface HostResources {
  /** Memory the kernel could give new processes without swapping (MemAvailable), in MiB. */
  availableMemoryMiB(): Promise<number>;
  /** Space an unprivileged writer may still use on the filesystem holding `dir`, in MiB. */
  freeDiskMiB(dir: string): Promise<number>;
}
