import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { TabulaError } from '../domain/errors.js';
import type { Logger } from '../ports/logger.js';

export interface SupervisedProcessOptions {
  /** Names the daemon in logs and errors (`service=`). */
  readonly name: string;
  readonly logger: Logger;
  /** A line of output (stdout or stderr) that means the daemon is up; without one, being alive is enough. */
  readonly ready?: RegExp;
  /** A line that means it failed even if it keeps running (e.g. a socket it could not open). */
  readonly failure?: RegExp;
  /** How long it must stay alive after `ready` (or after spawning) to count as up. Default 300 ms. */
  readonly settleMs?: number;
  /** How long `ready` may take. Default 10 s. */
  readonly readyTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL. Default 5 s. */
  readonly graceMs?: number;
  /** First restart delay after a crash, doubled per consecutive failure up to `maxBackoffMs`. Default 1 s. */
  readonly backoffMs?: number;
  /** Default 60 s. */
  readonly maxBackoffMs?: number;
  /** A run at least this long resets the backoff. Default 60 s. */
  readonly stableMs?: number;
  /** Lines of output kept for failure reports. Default 15. */
  readonly tailLines?: number;
  /**
   * Where to record the child's PID. A supervisor that dies leaves its daemon
   * running (outside systemd, which would kill the whole unit); the next
   * `start` finds it through this file and ends it first, if its command line
   * still contains `marker`, so two daemons never serve one LAN.
   */
  readonly pidRecord?: { readonly file: string; readonly marker: string };
}

interface Run {
  readonly child: ChildProcess;
  readonly tail: string[];
  readonly spawnedAt: number;
  upAt: number | undefined;
  /** Set by stop(): its end is no crash. */
  stopping: boolean;
  closed: Promise<void>;
}

/**
 * One child daemon, kept running: `start` resolves once it is up; if it later
 * exits by itself it is restarted with exponential backoff, each failure
 * logged once with the exit status and its last lines of output; `stop` ends
 * it with SIGTERM, then SIGKILL after a grace period. The daemon must stay in
 * the foreground (dnsmasq -k, chronyd -d): the PID is the daemon.
 */
export class SupervisedProcess {
  readonly #o: Required<Omit<SupervisedProcessOptions, 'ready' | 'failure' | 'pidRecord'>> & Pick<SupervisedProcessOptions, 'ready' | 'failure' | 'pidRecord'>;
  /** What should run; undefined once stopped. */
  #argv: readonly string[] | undefined;
  #run: Run | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #up = false;

  constructor(options: SupervisedProcessOptions) {
    this.#o = {
      settleMs: 300,
      readyTimeoutMs: 10_000,
      graceMs: 5_000,
      backoffMs: 1_000,
      maxBackoffMs: 60_000,
      stableMs: 60_000,
      tailLines: 15,
      // An option given as undefined keeps its default.
      ...(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as SupervisedProcessOptions),
    };
  }

  /** Up: came up and has not exited since. */
  get running(): boolean {
    return this.#up;
  }

  get pid(): number | undefined {
    return this.#up ? this.#run?.child.pid : undefined;
  }

  /**
   * Stops what runs, then runs `argv` (`argv[0]` looked up in PATH) and
   * resolves once it is up. If it does not come up: rejects with
   * TabulaError('internal') naming why, and stays stopped, unless
   * `keepTrying`, with which it goes on retrying with backoff.
   */
  async start(argv: readonly string[], options: { keepTrying?: boolean } = {}): Promise<void> {
    if (argv.length === 0) throw new TabulaError('invalid-argument', `${this.#o.name}: nothing to run`);
    await this.stop();
    await this.#endLeftover();
    this.#argv = argv;
    this.#failures = 0;
    try {
      await this.#launch(argv);
    } catch (e) {
      if (options.keepTrying === true && this.#argv === argv) this.#scheduleRestart(e);
      else if (this.#argv === argv) this.#argv = undefined;
      throw e;
    }
  }

  /** Ends the daemon (and any pending restart); resolves when it has exited. */
  async stop(): Promise<void> {
    this.#argv = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const run = this.#run;
    if (run === undefined) return;
    run.stopping = true;
    this.#up = false;
    await terminate(run.child, run.closed, this.#o.graceMs);
    if (this.#run === run) this.#run = undefined;
    if (this.#o.pidRecord !== undefined) await rm(this.#o.pidRecord.file, { force: true });
  }

  /** Spawns argv and waits until it is up; on failure the child is gone when this rejects. */
  #launch(argv: readonly string[]): Promise<void> {
    const { name, logger, ready, failure, settleMs, readyTimeoutMs, tailLines } = this.#o;
    const [file = '', ...args] = argv;
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Run = { child, tail: [], spawnedAt: Date.now(), upAt: undefined, stopping: false, closed: Promise.resolve() };
    this.#run = run;

    return new Promise<void>((resolve, reject) => {
      let phase: 'starting' | 'up' | 'failed' = 'starting';
      let settle: NodeJS.Timeout | undefined;
      const readyTimer = setTimeout(() => fail(`no sign of being up within ${readyTimeoutMs} ms`), readyTimeoutMs);
      const up = () => {
        if (phase !== 'starting') return;
        phase = 'up';
        clearTimeout(readyTimer);
        run.upAt = Date.now();
        this.#up = true;
        resolve();
      };
      const fail = (reason: string) => {
        if (phase !== 'starting') return;
        phase = 'failed';
        clearTimeout(readyTimer);
        if (settle !== undefined) clearTimeout(settle);
        run.stopping = true;
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        // Wait for the output to end, so the report has the daemon's last words.
        void run.closed.then(() => {
          if (this.#run === run) this.#run = undefined;
          reject(new TabulaError('internal', `${name} did not come up: ${reason}${tailText(run.tail)}`));
        });
      };
      const onLine = (line: string) => {
        run.tail.push(line);
        if (run.tail.length > tailLines) run.tail.shift();
        logger.debug('process-output', { service: name, line });
        if (phase !== 'starting') return;
        if (failure?.test(line) === true) fail(`it reported: ${untimed(line)}`);
        else if (ready?.test(line) === true && settle === undefined) settle = setTimeout(up, settleMs);
      };

      run.closed = new Promise<void>((closed) => {
        let spawnError: Error | undefined;
        let ended = false;
        const end = (code: number | null, signal: NodeJS.Signals | null) => {
          if (ended) return;
          ended = true;
          closed();
          if (phase === 'starting') {
            fail(spawnError !== undefined ? `cannot run ${file}: ${spawnError.message}` : `it exited ${exitStatus(code, signal)}`);
          } else if (phase === 'up' && !run.stopping) {
            if (this.#run === run) {
              this.#run = undefined;
              this.#up = false;
            }
            this.#crashed(run, code, signal);
          }
        };
        child.on('error', (e) => {
          spawnError = e;
          // Never started (no such program): there may be no 'close' to wait for.
          if (child.pid === undefined) end(null, null);
        });
        child.on('close', end);
      });
      if (child.stdout !== null) createInterface({ input: child.stdout }).on('line', onLine);
      if (child.stderr !== null) createInterface({ input: child.stderr }).on('line', onLine);
      if (ready === undefined) settle = setTimeout(up, settleMs);
      if (this.#o.pidRecord !== undefined && child.pid !== undefined) {
        void writeFile(this.#o.pidRecord.file, `${child.pid}\n`, { mode: 0o600 }).catch((e: unknown) =>
          logger.warning('process-pid-record-failed', { service: name, file: this.#o.pidRecord?.file, reason: String(e) }),
        );
      }
    });
  }

  #crashed(run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#argv === undefined) return;
    if (run.upAt !== undefined && Date.now() - run.upAt >= this.#o.stableMs) this.#failures = 0;
    const wait = this.#nextDelay();
    this.#o.logger.warning('process-exited', {
      service: this.#o.name,
      status: exitStatus(code, signal),
      restart_in_ms: wait,
      output: run.tail.join(' | ') || undefined,
    });
    this.#restartAfter(wait);
  }

  #scheduleRestart(cause: unknown): void {
    const wait = this.#nextDelay();
    this.#o.logger.warning('process-start-failed', { service: this.#o.name, reason: cause instanceof Error ? cause.message : String(cause), restart_in_ms: wait });
    this.#restartAfter(wait);
  }

  #nextDelay(): number {
    this.#failures += 1;
    return Math.min(this.#o.backoffMs * 2 ** (this.#failures - 1), this.#o.maxBackoffMs);
  }

  #restartAfter(ms: number): void {
    const argv = this.#argv;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (argv === undefined || this.#argv !== argv) return;
      this.#launch(argv).then(
        () => this.#o.logger.notice('process-restarted', { service: this.#o.name, pid: this.#run?.child.pid, failures: this.#failures }),
        (e: unknown) => {
          if (this.#argv === argv) this.#scheduleRestart(e);
        },
      );
    }, ms);
    this.#timer.unref();
  }

  /** Ends a daemon a previous supervisor left running, found by the PID record. */
  async #endLeftover(): Promise<void> {
    const record = this.#o.pidRecord;
    if (record === undefined) return;
    const pid = Number((await readFile(record.file, 'utf8').catch(() => '')).trim());
    await rm(record.file, { force: true });
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').some((a) => a.includes(record.marker)) || !(await alive(pid))) return;
    this.#o.logger.notice('process-leftover-ended', { service: this.#o.name, pid });
    signal(pid, 'SIGTERM');
    for (const stop = Date.now() + this.#o.graceMs; Date.now() < stop; ) {
      if (!(await alive(pid))) return;
      await delay(50);
    }
    signal(pid, 'SIGKILL');
    for (const stop = Date.now() + 5_000; Date.now() < stop && (await alive(pid)); ) await delay(50);
  }
}

async function terminate(child: ChildProcess, closed: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = (ms: number) => delay(ms, 'timeout' as const, { ref: false });
  if ((await Promise.race([closed.then(() => 'closed' as const), timer(graceMs)])) === 'closed') return;
  child.kill('SIGKILL');
  if ((await Promise.race([closed.then(() => 'closed' as const), timer(5_000)])) === 'timeout') {
    throw new TabulaError('internal', `process ${String(child.pid)} did not end after SIGKILL`);
  }
}

/** Running and not a zombie (an orphan here may wait a while for PID 1 to reap it). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return stat !== '' && state !== 'Z' && state !== 'X';
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

function exitStatus(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `on signal ${signal}` : `with code ${String(code)}`;
}

/** Without the timestamp some daemons (chronyd -d) start their lines with: the journal adds its own. */
function untimed(line: string): string {
  return line.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\s+/, '').trim();
}

function tailText(tail: readonly string[]): string {
  const lines = tail.map(untimed).filter((l) => l !== '');
  return lines.length === 0 ? '' : `; its last output: ${lines.join(' | ')}`;
}
