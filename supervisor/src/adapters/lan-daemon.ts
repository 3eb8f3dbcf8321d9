import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TabulaError } from '../domain/errors.js';
import type { Logger } from '../ports/logger.js';
import { SupervisedProcess, type SupervisedProcessOptions } from './supervised-process.js';

const CHECK_TIMEOUT_MS = 10_000;

/** What differs between the daemons the supervisor runs for its networks (station LAN, VM network). */
export interface LanDaemonOptions<S> {
  /** The daemon's name in logs and errors. */
  readonly name: string;
  /** What it serves, in messages: "station LAN", "VM network". */
  readonly serves: string;
  readonly logger: Logger;
  /** Its private directory (created 0700). */
  readonly dir: string;
  /** The configuration file, inside `dir`. */
  readonly configFile: string;
  /** Problems with the spec (stationLanProblems); any makes apply refuse it before rendering. */
  readonly validate: (spec: S) => string[];
  /** Whether the spec wants this daemon running at all. */
  readonly wanted: (spec: S) => boolean;
  /** The configuration text (throws TabulaError config-invalid for values it cannot write). */
  readonly render: (spec: S) => string;
  /** argv that checks a configuration file and exits non-zero, saying why on stderr, if it is bad. */
  readonly checkArgv: (file: string) => readonly string[];
  /** argv that runs the daemon in the foreground with `configFile`. */
  readonly runArgv: readonly string[];
  /** Run before each start (e.g. removing a stale PID file the daemon would refuse to start over). */
  readonly beforeStart?: () => Promise<void>;
  /** How to tell it came up, and its restart policy. */
  readonly process: Omit<SupervisedProcessOptions, 'name' | 'logger' | 'pidRecord'>;
}

/**
 * The apply cycle both LAN daemons share: validate → render → write
 * `CONFIG.new` → the daemon's own check → rename over `CONFIG` → restart; and
 * the rollback: a daemon that does not come up with the new file gets the
 * previous one back and is started again.
 */
export class LanDaemon<S> {
  readonly process: SupervisedProcess;
  readonly #o: LanDaemonOptions<S>;
  /** The configuration the running daemon was started with (what a rollback restores). */
  #applied: string | undefined;
  #lane: Promise<unknown> = Promise.resolve();

  constructor(options: LanDaemonOptions<S>) {
    this.#o = options;
    this.process = new SupervisedProcess({
      ...options.process,
      name: options.name,
      logger: options.logger,
      pidRecord: { file: `${options.configFile}.supervised-pid`, marker: options.configFile },
    });
  }

  get running(): boolean {
    return this.process.running;
  }

  apply(spec: S): Promise<void> {
    return this.#serially(() => this.#apply(spec));
  }

  stop(): Promise<void> {
    return this.#serially(async () => {
      await this.process.stop();
      this.#applied = undefined;
    });
  }

  async #apply(spec: S): Promise<void> {
    const { name, logger, dir, configFile } = this.#o;
    const problems = this.#o.validate(spec);
    if (problems.length > 0) throw new TabulaError('config-invalid', `${this.#o.serves}: ${problems.join('; ')}`);
    if (!this.#o.wanted(spec)) {
      if (this.process.running || this.#applied !== undefined) logger.notice('lan-service-off', { service: name });
      await this.process.stop();
      this.#applied = undefined;
      return;
    }
    const text = this.#o.render(spec);
    if (text === this.#applied && this.process.running) return;

    // The daemon's own directory is private; the ones above it (the state
    // directory itself when this runs first) must stay passable for QEMU,
    // which runs as another user and reaches the pools' disks through them.
    await mkdir(dirname(dir), { recursive: true, mode: 0o711 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const candidate = `${configFile}.new`;
    await writeFile(candidate, text, { mode: 0o600 });
    try {
      await this.#check(candidate);
    } catch (e) {
      await rm(candidate, { force: true });
      throw e;
    }

    // The file on disk is the last one that was checked and came up (or was put back),
    // also when this supervisor is new: a rollback restores it, and restarts the daemon if it was meant to run.
    const wasRunning = this.#applied !== undefined;
    const previous = this.#applied ?? (await readFile(configFile, 'utf8').catch(() => undefined));
    await this.process.stop();
    this.#applied = undefined;
    try {
      await rename(candidate, configFile);
      await this.#start();
      this.#applied = text;
      logger.info('lan-service-applied', { service: name, pid: this.process.pid });
      return;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      if (previous === undefined) await rm(configFile, { force: true });
      else await writeAtomic(configFile, previous);
      if (previous === undefined || !wasRunning) {
        throw new TabulaError('internal', `${name} did not come up with the new ${this.#o.serves} configuration: ${why}`, { cause: e });
      }
      try {
        await this.#start({ keepTrying: true });
        this.#applied = previous;
      } catch (again) {
        this.#applied = previous;
        const how = again instanceof Error ? again.message : String(again);
        throw new TabulaError('internal', `${name} did not come up with the new ${this.#o.serves} configuration (${why}), nor with the previous one, which it keeps retrying (${how})`, { cause: e });
      }
      throw new TabulaError('internal', `${name} did not come up with the new ${this.#o.serves} configuration, so the previous one is back: ${why}`, { cause: e });
    }
  }

  async #start(options: { keepTrying?: boolean } = {}): Promise<void> {
    await this.#o.beforeStart?.();
    await this.process.start(this.#o.runArgv, options);
  }

  #check(file: string): Promise<void> {
    const [cmd = '', ...args] = this.#o.checkArgv(file);
    return new Promise((resolve, reject) => {
      execFile(cmd, args, { timeout: CHECK_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
        if (error === null) return resolve();
        const timedOut = (error as { killed?: boolean }).killed === true;
        if (timedOut || typeof (error as { code?: unknown }).code !== 'number') {
          // Not a verdict on the file: the checker itself could not run.
          const reason = timedOut ? `it did not finish within ${CHECK_TIMEOUT_MS} ms` : error.message;
          return reject(new TabulaError('internal', `cannot check the ${this.#o.name} configuration: ${reason}`, { cause: error, retryable: timedOut }));
        }
        reject(new TabulaError('config-invalid', `${this.#o.name} refuses the ${this.#o.serves} configuration: ${summary(stderr || stdout) || error.message}`, { cause: error }));
      });
    });
  }

  #serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#lane.then(work, work);
    this.#lane = next.catch(() => undefined);
    return next;
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.restore`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * The checkers' complaints, one line each: dnsmasq's `dnsmasq: bad hex
 * constant at line 5 of FILE`, chronyd's `2026-…Z Fatal error : Invalid
 * directive at line 4 in file FILE` (timestamp dropped); "syntax check OK" noise
 * and blank lines left out.
 */
function summary(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+/, '').trim())
    .filter((l) => l !== '' && !/syntax check OK/i.test(l));
  return [...new Set(lines)].join('; ');
}
