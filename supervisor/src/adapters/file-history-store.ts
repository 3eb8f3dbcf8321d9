import { isSavedHistory, type SavedHistory } from '../domain/pool-history.js';
import type { HistoryStore } from '../ports/history-store.js';
import { JsonFileStore } from './json-file-store.js';

/** The plots' minutes as one JSON document (STATE_DIR/admin/history.json), replaced atomically; compact, as it holds a day of minutes. */
export class FileHistoryStore extends JsonFileStore<SavedHistory> implements HistoryStore {
  constructor(file: string) {
    super(file, isSavedHistory, 'a saved history ({"version": 1, "pools": {"POOL": [{"at": MS, "clean": N, …}]}})', { compact: true });
  }
}
