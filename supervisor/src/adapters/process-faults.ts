import type { Faults } from '../ports/faults.js';

const POINT = /^(before|mid|after):[a-z-]+$|^handoff:[a-z-]+$/;

/**
 * Kills this process with SIGKILL at a named point: nothing runs after it, no
 * handler, no flush, as after a power loss or the OOM killer. Armed only by
 * the TABULA_FAULT environment variable, a comma-separated list of
 * `point[#n]` (the n-th time the point is reached; default the first).
 */
export class ProcessFaults implements Faults {
  readonly #armed = new Map<string, number>();
  readonly #hits = new Map<string, number>();

  /** Throws for a malformed spec: a test that arms nothing must not pass by accident. */
  constructor(spec: string) {
    for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [point = '', nth = '1'] = item.split('#');
      if (!POINT.test(point) || !/^[1-9]\d*$/.test(nth)) throw new Error(`TABULA_FAULT: "${item}" is not point[#n] (e.g. after:clone-disk, handoff:claimed#2)`);
      this.#armed.set(point, Number(nth));
    }
  }

  points(): string[] {
    return [...this.#armed].map(([p, n]) => `${p}#${n}`);
  }

  at(point: string): void {
    const nth = this.#armed.get(point);
    if (nth === undefined) return;
    const hits = (this.#hits.get(point) ?? 0) + 1;
    this.#hits.set(point, hits);
    if (hits !== nth) return;
    // stderr to a pipe or file is synchronous on Linux: the line is out before the kill.
    process.stderr.write(`<2>event=fault-injected point=${point} hit=${hits}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
