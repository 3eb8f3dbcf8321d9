import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Streams `source` into a new file at `path` (never the whole of it in
 * memory), hashing and counting as it goes, then syncs the file: once this
 * resolves, the bytes are on disk. Refuses to write over an existing file.
 * On failure the partial file stays, for the caller to remove.
 */
export async function writeHashed(source: Readable, path: string, progress: (bytes: number) => void, signal: AbortSignal): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, next) {
      hash.update(chunk);
      bytes += chunk.length;
      progress(chunk.length);
      next(null, chunk);
    },
  });
  // 0644: QEMU (another user) reads a golden image; it is never written.
  await pipeline(source, tap, createWriteStream(path, { flags: 'wx', mode: 0o644 }), { signal });
  // On disk before a rename makes it an image: a power cut leaves the whole image or none.
  const fh = await open(path, 'r');
  await fh.sync().finally(() => fh.close());
  return { bytes, sha256: hash.digest('hex') };
}
