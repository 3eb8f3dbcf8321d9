import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TabulaError } from '../domain/errors.js';
import type { SessionLogEntry, StationIdentity } from '../domain/session-log.js';
import type { SessionLog } from '../ports/session-log.js';

const FILE = 'sessions.jsonl';
const ROTATED = /^sessions\.jsonl\.(\d+)$/;
const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;
const DEFAULT_KEEP = 10;
/** Station addresses and names are personal enough to keep from other users. */
const DIR_MODE = 0o750;
const FILE_MODE = 0o640;
/** The largest time a Date can hold, so every time read back renders. */
const MAX_TIME_MS = 8.64e15;

export interface JsonlSessionLogOptions {
  /** The current file is rotated before an append would take it past this size. */
  readonly maxBytes?: number;
  /** How many rotated files are kept; older ones are deleted. */
  readonly keep?: number;
}

/**
 * The session log as JSON lines in `<dir>/sessions.jsonl`, rotated to
 * `sessions.jsonl.1` (newest) … `sessions.jsonl.<keep>`.
 *
 * Durable on return: each append is fdatasync'd, and the directory is fsync'd
 * whenever a file appears or is renamed. One process writes a directory; within
 * it every operation runs on one promise chain, so appends never interleave and
 * a read never sees a rotation half done. A power loss can leave at most a torn
 * last line: it is closed off with a newline when the log is opened and skipped
 * when reading.
 */
export class JsonlSessionLog implements SessionLog {
  readonly #dir: string;
  readonly #current: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  #chain: Promise<unknown> = Promise.resolve();
  #opened = false;
  /** Session ids already in the files (dedup: a retried step may offer one twice). */
  #ids = new Set<string>();
  #size = 0;
  #exists = false;

  constructor(dir: string, options: JsonlSessionLogOptions = {}) {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const keep = options.keep ?? DEFAULT_KEEP;
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new TabulaError('invalid-argument', `session log maxBytes must be a positive integer, not ${maxBytes}`);
    if (!Number.isSafeInteger(keep) || keep < 0) throw new TabulaError('invalid-argument', `session log keep must be a non-negative integer, not ${keep}`);
    this.#dir = dir;
    this.#current = join(dir, FILE);
    this.#maxBytes = maxBytes;
    this.#keep = keep;
  }

  /** Creates the directory and loads the ids already logged. Optional (every call opens lazily); lets a caller fail early. */
  open(): Promise<void> {
    return this.#serialized(() => this.#ensureOpen());
  }

  append(entry: SessionLogEntry): Promise<void> {
    return this.#serialized(async () => {
      // Never write what read() would drop; and only the known fields.
      const known = parseEntry(entry);
      if (known === undefined) throw new TabulaError('invalid-argument', `session log entry ${String(entry.session)} is incomplete`);
      await this.#ensureOpen();
      if (this.#ids.has(known.session)) return;
      const line = `${JSON.stringify(known)}\n`;
      const bytes = Buffer.byteLength(line);
      try {
        // An entry bigger than maxBytes still gets a file of its own rather than being lost.
        if (this.#size > 0 && this.#size + bytes > this.#maxBytes) await this.#rotate();
        await this.#appendDurably(line);
      } catch (e) {
        // Size, tail and files are unknown now: the next call opens afresh.
        this.#opened = false;
        throw e;
      }
      this.#ids.add(known.session);
    });
  }

  read(since?: number): Promise<SessionLogEntry[]> {
    return this.#serialized(async () => {
      await this.#ensureOpen();
      const entries: SessionLogEntry[] = [];
      const seen = new Set<string>();
      for (const path of await this.#files()) {
        for (const entry of parseLines(await this.#readText(path))) {
          if (seen.has(entry.session)) continue;
          seen.add(entry.session);
          if (since === undefined || entry.endedAt >= since) entries.push(entry);
        }
      }
      // Array sort is stable: equal end times keep the order they were written in.
      return entries.sort((a, b) => a.endedAt - b.endedAt);
    });
  }

  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(work);
    // A failure belongs to its own caller; the chain goes on.
    this.#chain = result.catch(() => undefined);
    return result;
  }

  async #ensureOpen(): Promise<void> {
    if (this.#opened) return;
    let created: string | undefined;
    try {
      created = await mkdir(this.#dir, { recursive: true, mode: DIR_MODE });
    } catch (e) {
      throw diskFailed(`cannot create session log directory ${this.#dir}`, e);
    }
    // A new directory must survive a power loss too: its parent records it.
    if (created !== undefined) await this.#syncDir(dirname(created));

    const ids = new Set<string>();
    for (const path of await this.#files()) {
      for (const entry of parseLines(await this.#readText(path))) ids.add(entry.session);
    }
    let size = 0;
    let exists = false;
    try {
      size = (await stat(this.#current)).size;
      exists = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw diskFailed(`cannot read ${this.#current}`, e);
    }
    this.#ids = ids;
    this.#size = size;
    this.#exists = exists;
    if (size > 0 && !(await this.#endsWithNewline())) {
      // A torn last line: end it, so the next record starts on a line of its own.
      await this.#appendDurably('\n');
    }
    this.#opened = true;
  }

  async #endsWithNewline(): Promise<boolean> {
    try {
      const fd = await open(this.#current, 'r');
      try {
        const { buffer } = await fd.read({ buffer: Buffer.alloc(1), position: this.#size - 1 });
        return buffer[0] === 0x0a;
      } finally {
        await fd.close();
      }
    } catch (e) {
      throw diskFailed(`cannot read ${this.#current}`, e);
    }
  }

  async #appendDurably(text: string): Promise<void> {
    try {
      const fd = await open(this.#current, 'a', FILE_MODE);
      try {
        await fd.write(text);
        await fd.datasync();
      } finally {
        await fd.close();
      }
    } catch (e) {
      throw diskFailed(`cannot append to ${this.#current}`, e);
    }
    if (!this.#exists) {
      await this.#syncDir(this.#dir);
      this.#exists = true;
    }
    this.#size += Buffer.byteLength(text);
  }

  /**
   * current → .1 → .2 … → .keep, dropping what would go past .keep. Each rename
   * replaces its target atomically, so a crash half way loses no kept file; the
   * next rotation finishes shifting (a missing number is skipped).
   */
  async #rotate(): Promise<void> {
    const rotated = join(this.#dir, `${FILE}.`);
    try {
      for (const n of await this.#rotatedNumbers()) {
        if (n >= this.#keep) await rm(`${rotated}${n}`, { force: true });
      }
      for (let n = this.#keep - 1; n >= 1; n--) await renameIfPresent(`${rotated}${n}`, `${rotated}${n + 1}`);
      if (this.#keep > 0) await rename(this.#current, `${rotated}1`);
      else await rm(this.#current, { force: true });
    } catch (e) {
      throw diskFailed(`cannot rotate ${this.#current}`, e);
    }
    await this.#syncDir(this.#dir);
    this.#size = 0;
    this.#exists = false;
  }

  /** Every file of the log, oldest first. */
  async #files(): Promise<string[]> {
    const numbers = (await this.#rotatedNumbers()).sort((a, b) => b - a);
    return [...numbers.map((n) => join(this.#dir, `${FILE}.${n}`)), this.#current];
  }

  async #rotatedNumbers(): Promise<number[]> {
    try {
      return (await readdir(this.#dir)).flatMap((name) => {
        const m = ROTATED.exec(name);
        return m?.[1] === undefined ? [] : [Number(m[1])];
      });
    } catch (e) {
      throw diskFailed(`cannot list session log directory ${this.#dir}`, e);
    }
  }

  /** A file's text; '' for one that is not there (a rotation may have moved it). */
  async #readText(path: string): Promise<string> {
    try {
      return await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw diskFailed(`cannot read ${path}`, e);
    }
  }

  async #syncDir(dir: string): Promise<void> {
    try {
      const fd = await open(dir, 'r');
      try {
        await fd.sync();
      } finally {
        await fd.close();
      }
    } catch (e) {
      throw diskFailed(`cannot sync directory ${dir}`, e);
    }
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function diskFailed(what: string, cause: unknown): TabulaError {
  return new TabulaError('disk-failed', `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}

/** The entries of a file's text; a line that is torn, foreign or incomplete is skipped, never fatal. */
function parseLines(text: string): SessionLogEntry[] {
  const entries: SessionLogEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    const entry = parseEntry(value);
    if (entry !== undefined) entries.push(entry);
  }
  return entries;
}

/**
 * A well-formed entry rebuilt from its known fields, or undefined. A field of
 * the wrong type marks the line as damaged, so later code (durations, CSV) only
 * ever sees the types it was promised.
 */
function parseEntry(value: unknown): SessionLogEntry | undefined {
  if (!isRecord(value) || !isRecord(value['station'])) return undefined;
  const { session, pool, vm, protocol, requestedAt, handedAt, connectedAt, endedAt, reason } = value;
  const { address, mac, name } = value['station'];
  if (!isFilled(session) || !isFilled(pool) || !isFilled(vm) || !isFilled(reason) || !isFilled(address)) return undefined;
  if (protocol !== 'v0' && protocol !== 'v1') return undefined;
  if (!isTime(handedAt) || !isTime(endedAt)) return undefined;
  if (!optional(requestedAt, isTime) || !optional(connectedAt, isTime)) return undefined;
  if (!optional(mac, isText) || !optional(name, isText)) return undefined;
  const station: StationIdentity = {
    address,
    ...(mac === undefined ? {} : { mac }),
    ...(name === undefined ? {} : { name }),
  };
  return {
    session,
    station,
    pool,
    vm,
    protocol,
    ...(requestedAt === undefined ? {} : { requestedAt }),
    handedAt,
    ...(connectedAt === undefined ? {} : { connectedAt }),
    endedAt,
    reason,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isText(v: unknown): v is string {
  return typeof v === 'string';
}

function isFilled(v: unknown): v is string {
  return isText(v) && v !== '';
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_TIME_MS;
}

function optional<T>(v: unknown, is: (v: unknown) => v is T): v is T | undefined {
  return v === undefined || is(v);
}
