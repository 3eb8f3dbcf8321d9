/**
 * Runs async jobs one at a time, in order. Reconcile rounds and admin actions
 * share one lane so that no two of them write a VM's record at once (a late
 * "mark clean" must never overwrite an admin's "dirty").
 */
export class Lane {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job, job);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every job queued so far has finished. */
  idle(): Promise<void> {
    return this.#tail.then(() => undefined);
  }
}
