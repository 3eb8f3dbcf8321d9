import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { stationLanProblems, type StationLanSpec } from '../domain/station-lan.js';
import type { NtpService } from '../ports/lan-services.js';
import type { Logger } from '../ports/logger.js';
import { renderStationChrony } from '../render/chrony-stations.js';
import { LanDaemon } from './lan-daemon.js';
import type { SupervisedProcessOptions } from './supervised-process.js';

export interface ChronyServiceOptions {
  /** Private directory for the config and PID files (created 0700). */
  readonly dir: string;
  readonly logger: Logger;
  /** The argv that runs chronyd, to which its arguments are appended (default `['chronyd']`). */
  readonly command?: readonly string[];
  /** Checks a spec before anything else (default stationLanProblems). A seam for tests that must get a bad spec past it. */
  readonly validate?: (spec: StationLanSpec) => string[];
  readonly timing?: Pick<SupervisedProcessOptions, 'settleMs' | 'readyTimeoutMs' | 'graceMs' | 'backoffMs' | 'maxBackoffMs' | 'stableMs'>;
}

/**
 * The station LAN's NTP server: a chronyd of its own beside any system one,
 * run as `chronyd -x -d -4 -f CONFIG`: `-x` never touches the system clock,
 * `-d` stays in the foreground logging to stderr, `-4` opens no IPv6 socket.
 * It drops root for _chrony after binding. `chronyd -p -f FILE` (parse, print,
 * exit; non-zero with "Fatal error : …" on a bad directive) checks each
 * configuration first. Off (stopped) when the spec says `ntp = false`.
 */
export class ChronyService implements NtpService {
  readonly #daemon: LanDaemon<StationLanSpec>;

  constructor(options: ChronyServiceOptions) {
    const command = options.command ?? ['chronyd'];
    const configFile = join(options.dir, 'chrony.conf');
    const pidFile = join(options.dir, 'chronyd.pid');
    this.#daemon = new LanDaemon({
      name: 'chronyd',
      serves: 'station LAN',
      logger: options.logger,
      dir: options.dir,
      configFile,
      validate: options.validate ?? stationLanProblems,
      wanted: (spec) => spec.ntp,
      render: (spec) => renderStationChrony(spec, { pidFile }),
      checkArgv: (file) => [...command, '-p', '-f', file],
      runArgv: [...command, '-x', '-d', '-4', '-f', configFile],
      // chronyd exits when its PID file names a live process; only a chronyd of ours writes this one,
      // and the supervisor has ended that one before any start.
      beforeStart: () => rm(pidFile, { force: true }),
      process: {
        ready: /chronyd version \S+ starting/,
        // Without its server socket it may run on (with upstream servers) while serving nobody.
        failure: /Could not open .*socket|Fatal error/,
        settleMs: 500,
        ...options.timing,
      },
    });
  }

  get running(): boolean {
    return this.#daemon.running;
  }

  apply(spec: StationLanSpec): Promise<void> {
    return this.#daemon.apply(spec);
  }

  stop(): Promise<void> {
    return this.#daemon.stop();
  }
}
