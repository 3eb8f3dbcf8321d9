/**
 * Runs async jobs one at a time, in order: reconcile rounds (one plan is
 * carried out before the next is made), config swaps, firewall applies.
 * Records of single VMs are guarded by KeyedLocks instead.
 */
export class Lane {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job, job);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
