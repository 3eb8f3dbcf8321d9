import { readFile } from 'node:fs/promises';
import { run } from './env.js';

/** The test guest writes its marker at 1 MiB on its disk (image/test-golden/README.md). */
const MARKER_OFFSET = 1024 * 1024;

/** Reads the marker sector of a qcow2 overlay from the host, even while its VM runs. */
export async function readMarker(overlay: string): Promise<string> {
  const { stdout } = await run('qemu-io', ['-r', '-U', '-f', 'qcow2', '-c', `read -v ${MARKER_OFFSET} 512`, overlay]);
  const bytes = stdout
    .split('\n')
    .filter((l) => /^[0-9a-f]{8}:/.test(l))
    .flatMap((l) => l.slice(10, 10 + 16 * 3).trim().split(/\s+/))
    .map((h) => parseInt(h, 16));
  const end = bytes.indexOf(0);
  return Buffer.from(end >= 0 ? bytes.slice(0, end) : bytes).toString('latin1');
}

export interface GuestBoot {
  readonly vm: string;
  readonly session: string;
  readonly previousMarker: string;
}

/** The boots a guest reported on its serial console, oldest first. */
export async function guestBoots(consoleLog: string): Promise<GuestBoot[]> {
  const text = await readFile(consoleLog, 'utf8').catch(() => '');
  return [...text.matchAll(/TABULA-GUEST vm=(\S+) session=(\S+) previous-marker=(.*)$/gm)].map((m) => ({
    vm: m[1] as string,
    session: m[2] as string,
    previousMarker: (m[3] as string).trim(),
  }));
}
