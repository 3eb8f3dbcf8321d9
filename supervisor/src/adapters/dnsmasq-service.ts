import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TabulaError } from '../domain/errors.js';
import { parseLeases, stationLanProblems, type Lease, type StationLanSpec } from '../domain/station-lan.js';
import type { DhcpService } from '../ports/lan-services.js';
import type { Logger } from '../ports/logger.js';
import { renderStationDnsmasq } from '../render/dnsmasq-stations.js';
import { LanDaemon } from './lan-daemon.js';
import type { SupervisedProcessOptions } from './supervised-process.js';

export interface DnsmasqServiceOptions {
  /** Private directory for the config, the lease file and the PID record (created 0700; keep it across restarts: the leases live there). */
  readonly dir: string;
  readonly logger: Logger;
  /** The argv that runs dnsmasq, to which its arguments are appended (default `['dnsmasq']`). */
  readonly command?: readonly string[];
  /** Checks a spec before anything else (default stationLanProblems). A seam for tests that must get a bad spec past it. */
  readonly validate?: (spec: StationLanSpec) => string[];
  /** Restart policy and timings (see SupervisedProcess). */
  readonly timing?: Pick<SupervisedProcessOptions, 'settleMs' | 'readyTimeoutMs' | 'graceMs' | 'backoffMs' | 'maxBackoffMs' | 'stableMs'>;
}

/**
 * The station LAN's DHCP server: one dnsmasq, in the foreground
 * (`--keep-in-foreground`), logging to stderr (`--log-facility=-`), which the
 * supervisor keeps. It starts as root, binds its DHCP socket, opens the lease
 * file, and then runs as dnsmasq's default user (nobody) with the
 * capabilities it keeps for DHCP. Each configuration is checked with
 * `dnsmasq --test` first. Leases are read from its lease file.
 */
export class DnsmasqService implements DhcpService {
  readonly #daemon: LanDaemon<StationLanSpec>;
  readonly #leaseFile: string;

  constructor(options: DnsmasqServiceOptions) {
    const command = options.command ?? ['dnsmasq'];
    const configFile = join(options.dir, 'dnsmasq.conf');
    this.#leaseFile = join(options.dir, 'dnsmasq.leases');
    this.#daemon = new LanDaemon({
      name: 'dnsmasq',
      serves: 'station LAN',
      logger: options.logger,
      dir: options.dir,
      configFile,
      validate: options.validate ?? stationLanProblems,
      wanted: () => true,
      render: (spec) => renderStationDnsmasq(spec, { leaseFile: this.#leaseFile }),
      checkArgv: (file) => [...command, '--test', `--conf-file=${file}`],
      runArgv: [...command, '--keep-in-foreground', '--log-facility=-', `--conf-file=${configFile}`],
      // Its first line once the sockets are bound and privileges dropped; fatal errors come before it.
      process: { ready: /\bstarted, version\b/, ...options.timing },
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

  async leases(): Promise<Lease[]> {
    try {
      return parseLeases(await readFile(this.#leaseFile, 'utf8'));
    } catch (e) {
      if ((e as { code?: unknown }).code === 'ENOENT') return [];
      throw new TabulaError('internal', `cannot read the DHCP leases: ${(e as Error).message}`, { cause: e });
    }
  }
}
