import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TabulaError } from '../domain/errors.js';

/**
 * A JSON document in the state directory, replaced atomically (written
 * beside it, then renamed): a crash leaves the old one or the new one.
 */
export class JsonFileStore<T> {
  readonly #file: string;
  readonly #valid: (v: unknown) => v is T;
  readonly #what: string;
  readonly #compact: boolean;

  /** `what` names the expected content in the error for a file that is not valid; `compact`: written on one line. */
  constructor(file: string, valid: (v: unknown) => v is T, what: string, options: { compact?: boolean } = {}) {
    this.#file = file;
    this.#valid = valid;
    this.#what = what;
    this.#compact = options.compact ?? false;
  }

  /** The stored value, or undefined when there is no file yet. */
  async load(): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TabulaError('disk-failed', `cannot read ${this.#file}: ${(e as Error).message}`, { cause: e });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (!this.#valid(value)) throw new TabulaError('invalid-argument', `${this.#file} is not ${this.#what}`);
    return value;
  }

  async save(value: T): Promise<void> {
    try {
      await mkdir(dirname(this.#file), { recursive: true });
      await writeFile(`${this.#file}.new`, JSON.stringify(value, null, this.#compact ? undefined : 2) + '\n', { mode: 0o644 });
      await rename(`${this.#file}.new`, this.#file);
    } catch (e) {
      throw new TabulaError('disk-failed', `cannot write ${this.#file}: ${(e as Error).message}`, { cause: e });
    }
  }
}
