import { execFile } from 'node:child_process';
import { TabulaError } from '../domain/errors.js';
import { isIpv4 } from '../domain/firewall.js';
import type { Conntrack, TrackedFlow } from '../ports/firewall.js';

const CONNTRACK_TIMEOUT_MS = 5_000;

export interface ConntrackToolOptions {
  /** The argv that runs conntrack, to which its arguments are appended (default `['conntrack']`). */
  readonly command?: readonly string[];
  readonly timeoutMs?: number;
}

/**
 * Through the `conntrack` CLI. A forwarded flow's original tuple is
 * station → lanAddress:spicePort, the same for every station's console; only
 * its reply tuple (console → station) names the console. So flows are selected
 * by reply source, never by original destination.
 */
export class ConntrackTool implements Conntrack {
  private readonly command: readonly string[];
  private readonly timeoutMs: number;

  constructor(options: ConntrackToolOptions = {}) {
    this.command = options.command ?? ['conntrack'];
    this.timeoutMs = options.timeoutMs ?? CONNTRACK_TIMEOUT_MS;
  }

  async established(address: string, port: number): Promise<TrackedFlow[]> {
    const args = ['-L', '-f', 'ipv4', ...select(address, port), '--state', 'ESTABLISHED'];
    const { stdout } = await this.exec(args, `cannot list connections to ${address}:${port}`);
    const flows: TrackedFlow[] = [];
    for (const line of stdout.split('\n')) {
      const flow = parseFlow(line);
      // Re-checked here too: older conntrack-tools filter some of these options only loosely.
      if (flow !== undefined && flow.reply.source === address && flow.reply.sourcePort === port) {
        flows.push({ source: flow.original.source, sourcePort: flow.original.sourcePort });
      }
    }
    return flows.sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : a.sourcePort - b.sourcePort));
  }

  async kill(address: string, port: number, source?: string): Promise<void> {
    if (source !== undefined && !isIpv4(source)) {
      throw new TabulaError('invalid-argument', `source ${JSON.stringify(source)} is not an IPv4 address`);
    }
    const args = ['-D', '-f', 'ipv4', ...select(address, port), ...(source === undefined ? [] : ['--orig-src', source])];
    await this.exec(args, `cannot end connections to ${address}:${port}`, true);
  }

  private exec(args: string[], what: string, noneIsFine = false): Promise<{ stdout: string }> {
    const [file = 'conntrack', ...prefix] = this.command;
    return new Promise((resolve, reject) => {
      execFile(file, [...prefix, ...args], { timeout: this.timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
        if (error === null) return resolve({ stdout });
        // `conntrack -D` exits 1 when nothing matched, which for us means "already gone".
        if (noneIsFine && (error as { code?: unknown }).code === 1 && /\b0 flow entries\b/.test(stderr)) return resolve({ stdout });
        const timedOut = (error as { killed?: boolean }).killed === true;
        const reason = timedOut ? `conntrack did not finish within ${this.timeoutMs} ms` : stderr.trim() || error.message;
        reject(new TabulaError('firewall-failed', `${what}: ${reason}`, { cause: error, retryable: timedOut }));
      });
    });
  }
}

function select(address: string, port: number): string[] {
  if (!isIpv4(address)) throw new TabulaError('invalid-argument', `address ${JSON.stringify(address)} is not an IPv4 address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TabulaError('invalid-argument', `port ${String(port)} is not a TCP port`);
  return ['-p', 'tcp', '--reply-src', address, '--reply-port-src', String(port)];
}

interface Side {
  source: string;
  sourcePort: number;
}

/**
 * One line of `conntrack -L`: `tcp 6 431999 ESTABLISHED src=… dst=… sport=…
 * dport=… src=… dst=… sport=… dport=… [ASSURED] mark=0 use=1`; the first
 * src/sport are the original direction, the second the reply.
 */
export function parseFlow(line: string): { original: Side; reply: Side } | undefined {
  const src: string[] = [];
  const sport: number[] = [];
  for (const token of line.trim().split(/\s+/)) {
    const [key, value] = token.split('=', 2);
    if (value === undefined) continue;
    if (key === 'src') src.push(value);
    else if (key === 'sport') sport.push(Number(value));
  }
  const [os, rs] = src;
  const [op, rp] = sport;
  if (os === undefined || rs === undefined || op === undefined || rp === undefined) return undefined;
  return { original: { source: os, sourcePort: op }, reply: { source: rs, sourcePort: rp } };
}
