import { TabulaError } from '../../src/domain/errors.js';
import type { SessionLogEntry } from '../../src/domain/session-log.js';
import type { SessionLog } from '../../src/ports/session-log.js';

/** The session log in memory, de-duplicated by session id like the real one; can be made to fail. */
export class MemorySessionLog implements SessionLog {
  readonly entries: SessionLogEntry[] = [];
  /** While true every append fails as a full disk would. */
  failing = false;

  async append(entry: SessionLogEntry): Promise<void> {
    if (this.failing) throw new TabulaError('disk-failed', 'injected: the session log cannot be written');
    if (!this.entries.some((e) => e.session === entry.session)) this.entries.push(entry);
  }

  async read(since = 0): Promise<SessionLogEntry[]> {
    return this.entries.filter((e) => e.endedAt >= since);
  }
}
