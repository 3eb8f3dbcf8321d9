import type { SessionLogEntry } from '../domain/session-log.js';

/** The append-only, durable session log. */
export interface SessionLog {
  /**
   * Appends one entry and returns once it is on stable storage. An entry whose
   * session id is already in the log is not written again (a step retried after
   * a crash may offer it twice).
   */
  append(entry: SessionLogEntry): Promise<void>;
  /** Entries that ended at or after `since` (ms since epoch), oldest first. */
  read(since?: number): Promise<SessionLogEntry[]>;
}
