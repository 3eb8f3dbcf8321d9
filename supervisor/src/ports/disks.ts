export interface ImageInfo {
  readonly format: string;
  readonly virtualSize: number;
  readonly actualSize: number;
  readonly backingFile?: string;
}

/** What `qemu-img check` found. */
export interface ImageCheck {
  readonly corruptions: number;
  readonly leaks: number;
  /** Set when the check could not run to its end. */
  readonly error?: string;
}

/** Disk images and the files of a pool's storage directory. */
export interface Disks {
  /** Throws golden-image-missing when the file is absent, golden-image-invalid when unreadable. */
  inspect(path: string): Promise<ImageInfo>;
  /** Checks an image's metadata (qcow2); a format without checks comes back clean. */
  check(path: string, format: string): Promise<ImageCheck>;
  /** A qcow2 overlay backed by the golden image; appears under `path` complete or not at all. */
  createOverlay(golden: { path: string; format: string }, path: string): Promise<void>;
  list(dir: string): Promise<string[]>;
  /** Removing a missing file is not an error. */
  remove(path: string): Promise<void>;
  ensureDir(dir: string): Promise<void>;
}
