import { execFile } from 'node:child_process';
import type { ActivitySource } from '../ports/activity.js';
import type { Logger } from '../ports/logger.js';
import { ActivityThrottle } from './activity-throttle.js';

export interface X11IdleOptions {
  /** The X display, such as `:0`. */
  readonly display: string;
  readonly logger: Logger;
  /** The display's cookie file, when the agent is not the display's owner. */
  readonly xauthority?: string;
  /** Default 1 s. */
  readonly pollMs?: number;
  /** While xprintidle fails (not installed, no display yet). Default 10 s. */
  readonly retryMs?: number;
  /** Default `xprintidle` (on PATH). */
  readonly command?: string;
  /** For one run of it. Default 2 s. */
  readonly timeoutMs?: number;
}

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { stderr?: string; killed?: boolean };
  if (err.code === 'ENOENT') return 'command not found';
  if (err.killed) return 'timed out';
  const stderr = typeof err.stderr === 'string' ? err.stderr.trim() : '';
  return stderr || (e instanceof Error ? e.message : String(e));
}

/**
 * Activity on an X display, from the X screensaver extension's idle time
 * (`xprintidle`, in ms): an idle time shorter than the time since the
 * previous poll means input since then. Cheap and needs no rights on input
 * devices, but sees only input that reaches this X server (under Xwayland,
 * not what goes to native Wayland clients). An X server that resets when its
 * last client leaves (Xvfb without -noreset) resets the idle time too, and
 * then every poll looks like input.
 */
export class X11IdleActivity implements ActivitySource {
  readonly #o: Required<Omit<X11IdleOptions, 'xauthority'>> & Pick<X11IdleOptions, 'xauthority'>;
  #throttle: ActivityThrottle | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Bumped by start/stop: a poll of an earlier run finds it changed and ends. */
  #run = 0;
  #lastPoll: number | undefined;
  /** The failure last logged, so a lasting one is logged once. */
  #failing: string | undefined;

  constructor(options: X11IdleOptions) {
    this.#o = {
      pollMs: 1_000,
      retryMs: 10_000,
      command: 'xprintidle',
      timeoutMs: 2_000,
      ...(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as X11IdleOptions),
    };
  }

  start(listener: () => void, everyMs: number): void {
    this.stop();
    this.#throttle = new ActivityThrottle(listener, everyMs, (e) =>
      this.#o.logger.err('activity-listener-failed', { source: 'x11', error: e instanceof Error ? e.message : String(e) }),
    );
    this.#schedule(0, this.#run);
  }

  stop(): void {
    this.#run++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#throttle?.stop();
    this.#throttle = undefined;
    this.#lastPoll = undefined;
  }

  #schedule(ms: number, run: number): void {
    this.#timer = setTimeout(() => void this.#poll(run), ms);
    this.#timer.unref();
  }

  async #poll(run: number): Promise<void> {
    let next = this.#o.pollMs;
    const started = performance.now();
    try {
      const idleMs = await this.#idleMs();
      if (run !== this.#run) return;
      const sinceLastPoll = this.#lastPoll === undefined ? this.#o.pollMs : started - this.#lastPoll;
      this.#lastPoll = started;
      if (this.#failing !== undefined) {
        this.#o.logger.notice('activity-source-recovered', { source: 'x11', display: this.#o.display });
        this.#failing = undefined;
      }
      if (idleMs < sinceLastPoll) this.#throttle?.activity();
    } catch (e) {
      if (run !== this.#run) return;
      this.#lastPoll = undefined;
      next = this.#o.retryMs;
      const why = describe(e);
      if (why !== this.#failing) {
        this.#failing = why;
        this.#o.logger.warning('activity-source-unavailable', {
          source: 'x11',
          display: this.#o.display,
          command: this.#o.command,
          error: why,
          retry_s: this.#o.retryMs / 1000,
        });
      }
    }
    if (run === this.#run) this.#schedule(next, run);
  }

  #idleMs(): Promise<number> {
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', DISPLAY: this.#o.display };
    if (this.#o.xauthority !== undefined) env['XAUTHORITY'] = this.#o.xauthority;
    return new Promise((resolve, reject) => {
      execFile(this.#o.command, [], { env, timeout: this.#o.timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
        if (error) {
          reject(Object.assign(error, { stderr }));
          return;
        }
        const text = stdout.trim();
        if (!/^\d+$/.test(text)) {
          reject(new Error(`unexpected output ${JSON.stringify(text.slice(0, 80))}`));
          return;
        }
        resolve(Number(text));
      });
    });
  }
}
