import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TabulaError } from '../domain/errors.js';
import type { WhitelistStore } from '../ports/whitelist.js';

/** A JSON array of entries in the state directory, replaced atomically. */
export class FileWhitelistStore implements WhitelistStore {
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  async load(): Promise<string[] | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TabulaError('disk-failed', `cannot read ${this.#file}: ${(e as Error).message}`, { cause: e });
    }
    const list = JSON.parse(text) as unknown;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw new TabulaError('invalid-argument', `${this.#file} is not a JSON list of whitelist entries`);
    return list;
  }

  async save(entries: readonly string[]): Promise<void> {
    try {
      await mkdir(dirname(this.#file), { recursive: true });
      await writeFile(`${this.#file}.new`, JSON.stringify(entries, null, 2) + '\n', { mode: 0o644 });
      await rename(`${this.#file}.new`, this.#file);
    } catch (e) {
      throw new TabulaError('disk-failed', `cannot write ${this.#file}: ${(e as Error).message}`, { cause: e });
    }
  }
}
