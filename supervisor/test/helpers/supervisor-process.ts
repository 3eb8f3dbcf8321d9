import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BUILD, SUPERVISOR, TABULACTL, run, waitFor } from './env.js';

/** The real supervisor as a child process, with its log lines kept for assertions. */
export class SupervisorProcess {
  readonly lines: string[] = [];
  /** When each line arrived (ms since epoch), index for index with `lines`. */
  readonly times: number[] = [];
  readonly #child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** The log is also kept in build/test-reports/ as an artifact of the run. */
  constructor(configPath: string, env: NodeJS.ProcessEnv = {}) {
    const artifact = join(BUILD, 'test-reports', `supervisor-${basename(dirname(configPath))}-${Date.now()}.log`);
    mkdirSync(dirname(artifact), { recursive: true });
    const log = createWriteStream(artifact);
    this.#child = spawn(process.execPath, [SUPERVISOR, '--config', configPath], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.#child.stdout, this.#child.stderr]) {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.lines.push(buf.slice(0, i));
          log.write(buf.slice(0, i) + '\n');
          this.times.push(Date.now());
          buf = buf.slice(i + 1);
        }
      });
    }
    this.exited = new Promise((resolve) => this.#child.on('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => log.end());
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  log(): string {
    return this.lines.join('\n');
  }

  /** Waits for a log line matching `pattern`, among the lines from index `from` on (see `mark`). */
  waitForLine(pattern: RegExp, timeoutMs = 120_000, from = 0): Promise<string> {
    return waitFor(`log line ${pattern}`, async () => this.lines.slice(from).find((l) => pattern.test(l)), timeoutMs);
  }

  /** The index of the next log line: pass it to waitForLine to ignore what came before. */
  mark(): number {
    return this.lines.length;
  }

  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill(signal);
    await this.exited;
  }
}

export interface CtlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function tabulactl(...args: string[]): Promise<CtlResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [TABULACTL, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

export interface StatusJson {
  state: string;
  reason: string;
  line: string;
  pools: Array<{
    name: string;
    size: number;
    healthy: boolean;
    healthReason: string;
    counts: Record<string, number>;
    vms: Array<{ name: string; uuid: string; pool: string; slot: number; state: string; active: boolean; stateSince: number; spicePort?: number }>;
  }>;
}

export async function status(): Promise<StatusJson> {
  const r = await tabulactl('--json', 'status');
  if (r.code !== 0) throw new Error(`tabulactl status failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson;
}

/** Waits until the pool reports `clean` VMs and nothing else. */
export function waitForClean(pool: string, clean: number, timeoutMs = 180_000): Promise<StatusJson> {
  return waitFor(
    `${clean} clean VM(s) in pool ${pool}`,
    async () => {
      const s = await status();
      const p = s.pools.find((x) => x.name === pool);
      const settled = p && p.counts['clean'] === clean && p.vms.length === clean && p.vms.every((vm) => vm.active);
      return settled ? s : undefined;
    },
    timeoutMs,
    500,
  );
}
