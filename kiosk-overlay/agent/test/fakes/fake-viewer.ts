import type { RunningViewer, Viewer, ViewerLaunch } from '../../src/ports/viewer.js';
import { Trace } from './trace.js';

/** One launched viewer: it runs until the test makes it exit, or the agent stops it. */
export class FakeRunningViewer implements RunningViewer {
  readonly exited: Promise<number | null>;
  stops = 0;
  /** Its exit code once it exited (null: killed). */
  exitCode: number | null | undefined;
  #resolve!: (code: number | null) => void;

  constructor(
    private readonly trace: Trace,
    readonly launch: ViewerLaunch,
  ) {
    this.exited = new Promise((resolve) => (this.#resolve = resolve));
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The viewer ends by itself (the visitor closed it, the console went away). */
  exit(code: number | null): void {
    if (!this.running) return;
    this.exitCode = code;
    this.#resolve(code);
    this.trace.note(`viewer:exit:${code}`);
  }

  stop(): Promise<void> {
    this.stops++;
    this.trace.note('viewer:stop');
    this.exit(null);
    return Promise.resolve();
  }
}

/** Records launches; `failNext` makes the next start reject. */
export class FakeViewer implements Viewer {
  readonly launches: ViewerLaunch[] = [];
  readonly started: FakeRunningViewer[] = [];
  failNext: Error | undefined;
  #seen = 0;
  #gate: Promise<void> | undefined;

  constructor(private readonly trace = new Trace()) {}

  async start(launch: ViewerLaunch): Promise<RunningViewer> {
    this.launches.push(launch);
    this.trace.changed();
    if (this.#gate) await this.#gate;
    const failure = this.failNext;
    if (failure) {
      this.failNext = undefined;
      this.trace.note('viewer:failed');
      throw failure;
    }
    const v = new FakeRunningViewer(this.trace, launch);
    this.started.push(v);
    this.trace.note('viewer:start');
    return v;
  }

  /** Starts from now on take until the returned function is called (a slow viewer start). */
  hold(): () => void {
    let release!: () => void;
    this.#gate = new Promise((resolve) => (release = resolve));
    return () => {
      this.#gate = undefined;
      release();
    };
  }

  /** The next viewer started, after the ones this method already returned. */
  async nextLaunch(): Promise<FakeRunningViewer> {
    const v = await this.trace.until(() => this.started[this.#seen]);
    this.#seen++;
    return v;
  }
}
