import type { AdminApi } from '../../src/api/http/admin/admin-api.js';
import type { SessionStarted } from '../../src/app/dispatcher.js';
import type { SupervisorStatus, WipeReport } from '../../src/app/reconciler.js';
import { TabulaError } from '../../src/domain/errors.js';
import type { SessionLogEntry } from '../../src/domain/session-log.js';
import type { StationView } from '../../src/domain/station-lan.js';
import type { Disposable } from '../../src/ports/disposable.js';

/**
 * The supervisor's API over plain values: every call is recorded as
 * [method, ...args]; `fail` makes the next call of a method throw.
 */
export class FakeSupervisorApi implements AdminApi {
  readonly calls: unknown[][] = [];
  current: SupervisorStatus = { state: 'ready', reason: '', pools: [], line: 'no pools configured' };
  log: SessionLogEntry[] = [];
  stationList: StationView[] = [];
  entries: string[] = ['example.org'];
  /** Optional members of the API: absent unless a test gives them. */
  history?: AdminApi['history'];
  images?: AdminApi['images'];
  readonly #fail = new Map<string, TabulaError>();
  readonly #status = new Set<(s: SupervisorStatus) => void>();
  readonly #started = new Set<(e: SessionStarted) => void>();
  readonly #ended = new Set<(e: SessionLogEntry) => void>();

  fail(method: string, error: TabulaError): void {
    this.#fail.set(method, error);
  }

  #call(method: string, ...args: unknown[]): void {
    this.calls.push([method, ...args]);
    const e = this.#fail.get(method);
    if (e) {
      this.#fail.delete(method);
      throw e;
    }
  }

  /** Publishes a status, as the reconciler does after a round that changed something. */
  publish(s: SupervisorStatus): void {
    this.current = s;
    for (const l of this.#status) l(s);
  }
  started(e: SessionStarted): void {
    for (const l of this.#started) l(e);
  }
  ended(e: SessionLogEntry): void {
    for (const l of this.#ended) l(e);
  }

  status(): SupervisorStatus {
    return this.current;
  }
  onStatus(l: (s: SupervisorStatus) => void): Disposable {
    this.#status.add(l);
    return { dispose: () => this.#status.delete(l) };
  }
  onSessionStarted(l: (e: SessionStarted) => void): Disposable {
    this.#started.add(l);
    return { dispose: () => this.#started.delete(l) };
  }
  onSessionEnded(l: (e: SessionLogEntry) => void): Disposable {
    this.#ended.add(l);
    return { dispose: () => this.#ended.delete(l) };
  }
  async recycle(name: string): Promise<void> {
    this.#call('recycle', name);
  }
  async sessions(since: number): Promise<SessionLogEntry[]> {
    this.#call('sessions', since);
    return this.log.filter((e) => e.endedAt >= since);
  }
  async wipe(): Promise<WipeReport> {
    this.#call('wipe');
    return { domains: 2, files: 3, sessions: 1 };
  }
  readonly whitelist = {
    list: (): string[] => {
      this.#call('whitelist.list');
      return [...this.entries];
    },
    set: async (entries: string[]): Promise<string[]> => {
      this.#call('whitelist.set', entries);
      this.entries = [...entries];
      return [...this.entries];
    },
    add: async (entry: string): Promise<string[]> => {
      this.#call('whitelist.add', entry);
      this.entries = [...this.entries, entry];
      return [...this.entries];
    },
    remove: async (entry: string): Promise<string[]> => {
      this.#call('whitelist.remove', entry);
      this.entries = this.entries.filter((e) => e !== entry);
      return [...this.entries];
    },
  };
  async stations(): Promise<StationView[]> {
    this.#call('stations');
    return this.stationList;
  }
  async endSession(id: string): Promise<void> {
    this.#call('endSession', id);
  }
  async drain(pool: string): Promise<void> {
    this.#call('drain', pool);
  }
  async undrain(pool: string): Promise<void> {
    this.#call('undrain', pool);
  }
  async resize(pool: string, size: number): Promise<void> {
    this.#call('resize', pool, size);
  }
  async setTimeouts(pool: string, changes: Readonly<Record<string, unknown>>): Promise<void> {
    this.#call('setTimeouts', pool, changes);
  }
  async reloadConfig(): Promise<void> {
    this.#call('reloadConfig');
  }
  async factoryReset(keepImages: boolean, confirm: string): Promise<void> {
    this.#call('factoryReset', keepImages, confirm);
  }
}
