import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TabulaError } from '../../domain/errors.js';

const NFT_TIMEOUT_MS = 10_000;

export interface NftOptions {
  /** The argv that runs nft, to which its arguments are appended (default `['nft']`). */
  readonly command?: readonly string[];
  readonly timeoutMs?: number;
}

/**
 * Runs nft for the adapters that own a table. A change is one `nft -j -f FILE`
 * run, which nft sends as one netlink batch: all or nothing. The document goes
 * through a file because nft cannot read /dev/stdin when it is a Node pipe (a
 * socketpair), and argv would put rules (stations, the whitelist) in the
 * process list. Failures are firewall-failed, naming `what`.
 */
export class NftRunner {
  readonly #command: readonly string[];
  readonly #timeoutMs: number;

  constructor(options: NftOptions = {}) {
    this.#command = options.command ?? ['nft'];
    this.#timeoutMs = options.timeoutMs ?? NFT_TIMEOUT_MS;
  }

  async apply(document: { nftables: unknown[] }, what: string): Promise<void> {
    // 0700 directory: the ruleset is nobody else's business.
    const dir = await mkdtemp(join(tmpdir(), 'tabula-nft-'));
    try {
      const file = join(dir, 'ruleset.json');
      await writeFile(file, JSON.stringify(document), { mode: 0o600 });
      await this.exec(['-j', '-f', file], what);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Any nft command; its stdout. */
  exec(args: readonly string[], what: string): Promise<string> {
    const [file = 'nft', ...prefix] = this.#command;
    return new Promise((resolve, reject) => {
      execFile(file, [...prefix, ...args], { timeout: this.#timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
        if (error === null) return resolve(stdout);
        const timedOut = (error as { killed?: boolean }).killed === true;
        const reason = timedOut ? `nft did not finish within ${this.#timeoutMs} ms` : summary(stderr) || error.message;
        reject(new TabulaError('firewall-failed', `${what}: ${reason}`, { cause: error, retryable: timedOut }));
      });
    });
  }
}

/** nft repeats one JSON error once per object it parsed; say it once. */
function summary(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return [...new Set(lines)].join('; ');
}
