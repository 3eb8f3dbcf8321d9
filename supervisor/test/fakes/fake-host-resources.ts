import type { HostResources } from '../../src/ports/host-resources.js';

/** A host whose free memory and disk the test sets. */
export class FakeHostResources implements HostResources {
  memoryMiB = 64 * 1024;
  diskMiB = new Map<string, number>();
  defaultDiskMiB = 100 * 1024;

  async availableMemoryMiB(): Promise<number> {
    return this.memoryMiB;
  }

  async freeDiskMiB(dir: string): Promise<number> {
    return this.diskMiB.get(dir) ?? this.defaultDiskMiB;
  }
}
