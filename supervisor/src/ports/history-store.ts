import type { SavedHistory } from '../domain/pool-history.js';

/** Where the admin page's plots outlive a restart. */
export interface HistoryStore {
  /** The saved history, or undefined when there is none yet; throws when the file is unusable. */
  load(): Promise<SavedHistory | undefined>;
  /** Replaces it atomically. */
  save(history: SavedHistory): Promise<void>;
}
