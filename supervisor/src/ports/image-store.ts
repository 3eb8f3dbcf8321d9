/** A file to bring into the store: where it is now, and its name there. */
export interface IncomingFile {
  readonly source: string;
  readonly name: string;
}

/** Streams bytes into a new file at `path`, synced to disk, reporting bytes as they come; gives the bytes written and their sha256. */
export type WriteStream = (path: string, progress: (bytes: number) => void, signal: AbortSignal) => Promise<{ readonly bytes: number; readonly sha256: string }>;

/** Bytes arriving from elsewhere (an upload from a browser), written by whoever holds them into the file the store names. */
export interface IncomingStream {
  /** How many bytes are announced (Content-Length). */
  readonly bytes: number;
  /** Throws when fewer come (the upload was cut short); what it wrote is then the caller's to remove. */
  readonly writeTo: WriteStream;
}

/** The image store's directory (STATE_DIR/images) as files. */
export interface ImageStore {
  readonly dir: string;
  /** Every file name in the store, hidden ones included; none when it does not exist yet. */
  list(): Promise<string[]>;
  /** The size of a regular file; throws not-found when there is none, invalid-argument for anything else (a device, a directory). */
  sizeOf(path: string): Promise<number>;
  /** Free bytes on the store's file system. */
  freeBytes(): Promise<number>;
  /**
   * Copies each file to a temporary name in the store, streaming (never the
   * whole file in memory), and returns their paths with the sha256 of each.
   * Nothing is left of a copy that fails or is aborted.
   */
  copyIn(files: readonly IncomingFile[], progress: (bytes: number) => void, signal: AbortSignal): Promise<Array<{ readonly temp: string; readonly sha256: string }>>;
  /** Writes a small text file under its temporary import name, synced; returns its path (for commit). */
  stageText(name: string, text: string): Promise<string>;
  /** A small file of the store as text; undefined when there is none. */
  readText(name: string): Promise<string | undefined>;
  /** Renames the copies into place, in the order given: the last one makes the import visible. */
  commit(files: ReadonlyArray<{ readonly temp: string; readonly name: string }>): Promise<void>;
  /** Removing a missing file is not an error. */
  remove(name: string): Promise<void>;
}
