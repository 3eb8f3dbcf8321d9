/**
 * One async mutex per key. Writers of a VM's record (reconcile steps, hand-offs,
 * admin actions) take that VM's lock and re-check the record inside it, so
 * work on different VMs never waits for each other.
 */
export class KeyedLocks {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const result = prev.then(job, job);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    // Forget idle keys so the map does not grow with every VM ever seen.
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
