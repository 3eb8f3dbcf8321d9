import type { WhitelistStore } from '../ports/whitelist.js';
import { JsonFileStore } from './json-file-store.js';

const isList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** A JSON array of entries in the state directory, replaced atomically. */
export class FileWhitelistStore extends JsonFileStore<string[]> implements WhitelistStore {
  constructor(file: string) {
    super(file, isList, 'a JSON list of whitelist entries');
  }
}
