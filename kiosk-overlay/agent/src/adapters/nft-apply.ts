import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StationError } from '../domain/errors.js';

const NFT_TIMEOUT_MS = 10_000;

export interface NftApplyOptions {
  /** The argv that runs nft, to which `-f FILE` is appended (default `['nft']`; tests prefix `ip netns exec NS`). */
  readonly command?: readonly string[];
  readonly timeoutMs?: number;
  /** Where the ruleset file is written (default the OS temp dir, i.e. $TMPDIR). */
  readonly tmpDir?: string;
}

/**
 * Loads a ruleset in nft's text syntax with one `nft -f FILE`: nft sends the
 * whole file as one netlink batch, so it applies entirely or not at all. The
 * text goes through a file because nft cannot read /dev/stdin when it is a
 * Node pipe (a socketpair). Failures are `firewall-failed` with nft's own
 * words (it names the line it refused).
 */
export async function applyNftRuleset(ruleset: string, options: NftApplyOptions = {}): Promise<void> {
  // A 0700 directory of its own: no other user can swap the file between write and read.
  const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'tabula-nft-')).catch((e: unknown) => {
    throw new StationError('firewall-failed', `cannot write the ruleset to a temporary file: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  });
  try {
    const file = join(dir, 'station.nft');
    await writeFile(file, ruleset, { mode: 0o600 });
    await runNft([...(options.command ?? ['nft']), '-f', file], options.timeoutMs ?? NFT_TIMEOUT_MS);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function runNft(argv: readonly string[], timeoutMs: number): Promise<void> {
  const [file = 'nft', ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      if (error === null) return resolve();
      const timedOut = (error as { killed?: boolean }).killed === true;
      const notFound = (error as NodeJS.ErrnoException).code === 'ENOENT';
      const message = timedOut
        ? `nft did not finish within ${timeoutMs} ms`
        : notFound
          ? `cannot run ${file}: not found (is the nftables package installed?)`
          : `nft refused the station firewall: ${stderr.trim().replace(/\s*\n\s*/g, '; ') || error.message}`;
      reject(new StationError('firewall-failed', message, { cause: error }));
    });
  });
}
