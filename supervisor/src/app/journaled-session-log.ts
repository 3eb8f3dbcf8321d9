import { durations, type SessionLogEntry } from '../domain/session-log.js';
import type { Logger } from '../ports/logger.js';
import type { SessionLog } from '../ports/session-log.js';

/** The session log, with each new entry also a journal record (`event=session-record`). */
export class JournaledSessionLog implements SessionLog {
  readonly #log: SessionLog;
  readonly #logger: Logger;
  /** Entries already told to the journal, so a retried step does not tell it twice. */
  readonly #told = new Set<string>();

  readonly #onEntry: (entry: SessionLogEntry) => void;

  /** `onEntry` hears of each new entry once (the metrics count sessions from it). */
  constructor(log: SessionLog, logger: Logger, onEntry: (entry: SessionLogEntry) => void = () => undefined) {
    this.#log = log;
    this.#logger = logger;
    this.#onEntry = onEntry;
  }

  async append(entry: SessionLogEntry): Promise<void> {
    await this.#log.append(entry);
    if (this.#told.has(entry.session)) return;
    this.#told.add(entry.session);
    // Bounded: the journal duplicate after a crash is harmless; memory growth is not.
    if (this.#told.size > 10_000) this.#told.clear();
    this.#onEntry(entry);
    const d = durations(entry);
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    this.#logger.notice('session-record', {
      session: entry.session,
      station: entry.station.address,
      station_mac: entry.station.mac,
      station_name: entry.station.name,
      pool: entry.pool,
      vm: entry.vm,
      protocol: entry.protocol,
      requested: iso(entry.requestedAt),
      handed: iso(entry.handedAt),
      connected: iso(entry.connectedAt),
      ended: iso(entry.endedAt),
      reason: entry.reason,
      wait_ms: d.waitMs,
      connect_ms: d.connectMs,
      session_s: d.sessionMs === undefined ? undefined : Math.round(d.sessionMs / 1000),
    });
  }

  read(since?: number): Promise<SessionLogEntry[]> {
    return this.#log.read(since);
  }
}
