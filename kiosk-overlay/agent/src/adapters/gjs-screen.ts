import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { KioskAccount } from '../ports/kiosk-user.js';
import type { Logger } from '../ports/logger.js';
import type { Countdown, Screen, ScreenEvent, ScreenView } from '../ports/screen.js';
import { spawnAsKiosk } from './kiosk-process.js';

export interface GjsScreenOptions {
  /** Path of screen/screen.js. */
  readonly program: string;
  readonly account: KioskAccount;
  readonly logger: Logger;
  /** Default 'gjs' (looked up in the kiosk's PATH). */
  readonly gjs?: string;
  /** `stop()`: how long the program may take to leave after EOF, then after SIGTERM. Default 2 s each. */
  readonly graceMs?: number;
  /**
   * Least time between two starts. A program that dies at once (no display)
   * and an agent that answers `exited` with `show` would otherwise spawn it
   * in a tight loop. Default 1 s.
   */
  readonly restartDelayMs?: number;
}

interface Run {
  readonly child: ChildProcess;
  closed: Promise<void>;
  /** Set by stop(): its end is no crash, and nobody is told. */
  stopping: boolean;
  /** The last lines of stderr, for the log when it dies. */
  readonly tail: string[];
}

const TAIL_LINES = 5;

/**
 * The Screen port over screen/screen.js, a gjs program run as the kiosk user:
 * views and the countdown go to its stdin as JSON lines, its stdout lines are
 * the visitor's input. It is started by the first `show` and, after it died,
 * by the next one.
 */
export class GjsScreen implements Screen {
  readonly #o: Required<GjsScreenOptions>;
  readonly #listeners: ((e: ScreenEvent) => void)[] = [];
  #run: Run | undefined;
  /** The view to send once a deferred start happens (see restartDelayMs). */
  #pending: ScreenView | undefined;
  #startTimer: NodeJS.Timeout | undefined;
  #lastStart = -Infinity;
  /** What should be on the screen: shown again when the program comes back after dying. */
  #current: ScreenView | undefined;
  /** The countdown on screen, and when it was given, to resend what is left after a restart. */
  #countdown: { readonly c: Countdown; readonly at: number } | undefined;

  constructor(options: GjsScreenOptions) {
    this.#o = { gjs: 'gjs', graceMs: 2_000, restartDelayMs: 1_000, ...stripUndefined(options) };
  }

  /** The screen program's process, while it runs (for logs, and tests that crash it). */
  get pid(): number | undefined {
    return this.#run?.child.pid;
  }

  show(view: ScreenView): void {
    this.#current = view;
    const run = this.#run;
    if (run !== undefined && !run.stopping) {
      this.#send({ show: view });
      return;
    }
    this.#pending = view;
    if (run !== undefined) {
      // Being stopped: a new one once the old one is gone.
      void run.closed.then(() => this.#pending !== undefined && this.show(this.#pending));
      return;
    }
    if (this.#startTimer !== undefined) return;
    const wait = this.#lastStart + this.#o.restartDelayMs - Date.now();
    if (wait <= 0) this.#start();
    else this.#startTimer = setTimeout(() => this.#start(), wait);
  }

  countdown(c: Countdown | null): void {
    this.#countdown = c === null ? undefined : { c, at: Date.now() };
    // Not running: the next start sends it.
    if (this.#run !== undefined && !this.#run.stopping) this.#send({ countdown: c });
  }

  onEvent(listener: (e: ScreenEvent) => void): void {
    this.#listeners.push(listener);
  }

  async stop(): Promise<void> {
    this.#current = undefined;
    if (this.#startTimer !== undefined) clearTimeout(this.#startTimer);
    this.#startTimer = undefined;
    this.#pending = undefined;
    const run = this.#run;
    if (run === undefined) return;
    run.stopping = true;
    const { child } = run;
    // EOF first: the program leaves by itself, without a signal's half-drawn frame.
    child.stdin?.end();
    const gone = async (ms: number): Promise<boolean> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
      try {
        return await Promise.race([run.closed.then(() => true as const), late]);
      } finally {
        clearTimeout(timer);
      }
    };
    if (!(await gone(this.#o.graceMs))) {
      child.kill('SIGTERM');
      if (!(await gone(this.#o.graceMs))) child.kill('SIGKILL');
    }
    await run.closed;
  }

  #start(): void {
    this.#startTimer = undefined;
    const view = this.#pending;
    this.#pending = undefined;
    if (view === undefined || this.#run !== undefined) return;
    this.#lastStart = Date.now();
    const { logger, account, program } = this.#o;
    let child: ChildProcess;
    try {
      child = spawnAsKiosk(account, this.#o.gjs, ['-m', program], ['pipe', 'pipe', 'pipe']);
    } catch (e) {
      // Bad arguments only (a missing program is reported by 'error'); stay stopped, the next show retries.
      logger.err('screen-start-failed', { program, reason: String(e) });
      return;
    }
    const run: Run = { child, closed: Promise.resolve(), stopping: false, tail: [] };
    this.#run = run;
    logger.info('screen-started', { pid: child.pid, program });

    // A write to a program that just died fails with EPIPE: its exit is reported, not the write.
    child.stdin?.on('error', (e) => logger.debug('screen-write-failed', { reason: e.message }));
    if (child.stdout !== null) createInterface({ input: child.stdout }).on('line', (line) => this.#onLine(line));
    if (child.stderr !== null) {
      createInterface({ input: child.stderr }).on('line', (line) => {
        run.tail.push(line);
        if (run.tail.length > TAIL_LINES) run.tail.shift();
        logger.debug('screen-output', { line });
      });
    }

    run.closed = new Promise<void>((resolve) => {
      let ended = false;
      const end = (code: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
        if (ended) return;
        ended = true;
        if (this.#run === run) this.#run = undefined;
        resolve();
        if (run.stopping) {
          logger.info('screen-stopped', { code: code ?? undefined, signal: signal ?? undefined });
          return;
        }
        logger.warning('screen-exited', {
          code: code ?? undefined,
          signal: signal ?? undefined,
          reason: error?.message,
          output: run.tail.join(' | ') || undefined,
        });
        this.#emit({ kind: 'exited', code });
        // The kiosk never stays black: the display may be restarting (it is killed with the
        // kiosk account at every session end), so the program comes back, at most once a
        // restartDelayMs, until it stays up.
        if (this.#current !== undefined && this.#run === undefined) this.show(this.#current);
      };
      child.on('error', (e) => {
        // Never started (no gjs, no permission): there may be no 'close' to wait for.
        if (child.pid === undefined) end(null, null, e);
        else logger.warning('screen-process-error', { reason: e.message });
      });
      // 'close', not 'exit': every event it printed has been read by then.
      child.on('close', (code, signal) => end(code, signal));
    });

    this.#send({ show: view });
    const cd = this.#countdown;
    if (cd !== undefined) {
      // The program counts down by itself; a new one starts from what is left.
      const elapsedS = Math.floor((Date.now() - cd.at) / 1000);
      this.#send({ countdown: { ...cd.c, seconds: Math.max(0, cd.c.seconds - elapsedS) } });
    }
  }

  #send(message: { show: ScreenView } | { countdown: Countdown | null }): void {
    const stdin = this.#run?.child.stdin;
    if (stdin === null || stdin === undefined || stdin.destroyed || !stdin.writable) return;
    stdin.write(`${JSON.stringify(message)}\n`);
  }

  #onLine(line: string): void {
    if (line.trim() === '') return;
    const event = parseEvent(line);
    if (event === undefined) {
      this.#o.logger.warning('screen-bad-event', { line: line.slice(0, 120) });
      return;
    }
    this.#emit(event);
  }

  #emit(e: ScreenEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(e);
      } catch (err) {
        // One listener's bug must not keep the others from hearing it, nor kill the reader.
        this.#o.logger.err('screen-listener-failed', { event: e.kind, reason: String(err) });
      }
    }
  }
}

/** The events the program may report; `exited` is the adapter's own. */
function parseEvent(line: string): ScreenEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (o['kind'] === 'touched') return { kind: 'touched' };
  if (o['kind'] === 'chose' && typeof o['pool'] === 'string') return { kind: 'chose', pool: o['pool'] };
  return undefined;
}

/** An option given as undefined keeps its default. */
function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
