import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TabulaError } from '../domain/errors.js';
import type { VmNetworkSpec } from '../domain/vm-network.js';
import type { VmNetwork } from '../ports/vm-network.js';
import {
  checkVmTable,
  parseBlockedCounters,
  renderForgetBlocked,
  renderVmNetwork,
  renderVmNetworkRemoval,
  renderWhitelistUpdate,
  VM_SETS,
} from '../render/vm-network.js';

const NFT_TIMEOUT_MS = 10_000;

export interface NftVmNetworkOptions {
  /** The argv that runs nft, to which its arguments are appended (default `['nft']`). */
  readonly command?: readonly string[];
  readonly timeoutMs?: number;
}

/**
 * Each change is one `nft -j -f FILE` run: one netlink batch, all or nothing.
 * Through a file, as `NftFirewall` does: nft cannot read /dev/stdin when it is
 * a Node pipe, and argv would show the whitelist in the process list.
 */
export class NftVmNetwork implements VmNetwork {
  private readonly command: readonly string[];
  private readonly timeoutMs: number;

  constructor(options: NftVmNetworkOptions = {}) {
    this.command = options.command ?? ['nft'];
    this.timeoutMs = options.timeoutMs ?? NFT_TIMEOUT_MS;
  }

  async apply(spec: VmNetworkSpec): Promise<void> {
    await this.runDocument(renderVmNetwork(spec), `cannot apply VM network table ${spec.table}`);
  }

  async setWhitelist(spec: VmNetworkSpec, options: { readonly forgetResolved?: boolean } = {}): Promise<void> {
    await this.runDocument(renderWhitelistUpdate(spec, options), `cannot update the whitelist in table ${spec.table}`);
  }

  async blockedCounts(table: string): Promise<Map<string, number>> {
    checkVmTable(table);
    const stdout = await this.exec(['-j', 'list', 'set', 'inet', table, VM_SETS.blocked], `cannot read the blocked counts of table ${table}`);
    return parseBlockedCounters(stdout);
  }

  async forgetBlocked(table: string, addresses: readonly string[]): Promise<void> {
    if (addresses.length === 0) return;
    await this.runDocument(renderForgetBlocked(table, addresses), `cannot reset blocked counts in table ${table}`);
  }

  async remove(table: string): Promise<void> {
    await this.runDocument(renderVmNetworkRemoval(table), `cannot remove VM network table ${table}`);
  }

  private async runDocument(document: { nftables: unknown[] }, what: string): Promise<void> {
    // 0700 directory: the whitelist is nobody else's business.
    const dir = await mkdtemp(join(tmpdir(), 'tabula-nft-'));
    try {
      const file = join(dir, 'vm-network.json');
      await writeFile(file, JSON.stringify(document), { mode: 0o600 });
      await this.exec(['-j', '-f', file], what);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private exec(args: string[], what: string): Promise<string> {
    const [file = 'nft', ...prefix] = this.command;
    return new Promise((resolve, reject) => {
      execFile(file, [...prefix, ...args], { timeout: this.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error === null) return resolve(stdout);
        const timedOut = (error as { killed?: boolean }).killed === true;
        const reason = timedOut ? `nft did not finish within ${this.timeoutMs} ms` : summary(stderr) || error.message;
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
