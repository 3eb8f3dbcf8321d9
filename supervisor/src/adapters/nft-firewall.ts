import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TabulaError } from '../domain/errors.js';
import type { FirewallSpec } from '../domain/firewall.js';
import type { Firewall } from '../ports/firewall.js';
import { renderFirewall, renderFirewallRemoval } from '../render/firewall.js';

const NFT_TIMEOUT_MS = 10_000;

export interface NftFirewallOptions {
  /** The argv that runs nft, to which its arguments are appended (default `['nft']`). */
  readonly command?: readonly string[];
  readonly timeoutMs?: number;
}

/**
 * Each change is one `nft -j -f FILE` run, which nft sends as one netlink
 * batch: the kernel takes the whole table or none of it. The document goes
 * through a file because nft cannot read /dev/stdin when it is a Node pipe
 * (a socketpair), and argv would put the ruleset in the process list.
 */
export class NftFirewall implements Firewall {
  private readonly command: readonly string[];
  private readonly timeoutMs: number;

  constructor(options: NftFirewallOptions = {}) {
    this.command = options.command ?? ['nft'];
    this.timeoutMs = options.timeoutMs ?? NFT_TIMEOUT_MS;
  }

  async apply(spec: FirewallSpec): Promise<void> {
    await this.run(renderFirewall(spec), `cannot apply firewall table ${spec.table}`);
  }

  async remove(table: string): Promise<void> {
    await this.run(renderFirewallRemoval(table), `cannot remove firewall table ${table}`);
  }

  private async run(document: { nftables: unknown[] }, what: string): Promise<void> {
    // 0700 directory: the ruleset names stations, which is nobody else's business.
    const dir = await mkdtemp(join(tmpdir(), 'tabula-nft-'));
    try {
      const file = join(dir, 'table.json');
      await writeFile(file, JSON.stringify(document), { mode: 0o600 });
      await exec(this.command, ['-j', '-f', file], this.timeoutMs, what);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

function exec(command: readonly string[], args: string[], timeoutMs: number, what: string): Promise<void> {
  const [file = 'nft', ...prefix] = command;
  return new Promise((resolve, reject) => {
    execFile(file, [...prefix, ...args], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      if (error === null) return resolve();
      const timedOut = (error as { killed?: boolean }).killed === true;
      const reason = timedOut ? `nft did not finish within ${timeoutMs} ms` : summary(stderr) || error.message;
      reject(new TabulaError('firewall-failed', `${what}: ${reason}`, { cause: error, retryable: timedOut }));
    });
  });
}

/** nft repeats one JSON error once per object it parsed; say it once. */
function summary(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return [...new Set(lines)].join('; ');
}
