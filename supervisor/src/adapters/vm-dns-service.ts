import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TabulaError } from '../domain/errors.js';
import type { WhitelistEntry } from '../domain/whitelist.js';
import type { Logger } from '../ports/logger.js';
import { renderDnsmasqVms, renderDnsmasqVmsServers, type DnsmasqVmsSpec } from '../render/dnsmasq-vms.js';
import { LanDaemon } from './lan-daemon.js';

export type VmDnsSpec = Omit<DnsmasqVmsSpec, 'leaseFile' | 'serversFile' | 'pidFile'>;

/**
 * The VMs' DHCP and DNS: a dnsmasq on the VM bridge that resolves only
 * whitelisted names (their addresses land in the VM table's resolved set).
 * The names live in a servers file that a SIGHUP re-reads: a whitelist change
 * needs no restart and leaves DHCP and running sessions alone.
 */
export class VmDnsService {
  readonly #daemon: LanDaemon<VmDnsSpec>;
  readonly #dir: string;
  readonly #serversFile: string;
  readonly #logger: Logger;

  constructor(options: { dir: string; logger: Logger; command?: readonly string[] }) {
    const command = options.command ?? ['dnsmasq'];
    this.#dir = options.dir;
    this.#logger = options.logger;
    this.#serversFile = join(options.dir, 'names.conf');
    const configFile = join(options.dir, 'dnsmasq.conf');
    const leaseFile = join(options.dir, 'dnsmasq.leases');
    this.#daemon = new LanDaemon<VmDnsSpec>({
      name: 'dnsmasq-vms',
      serves: 'VM network',
      logger: options.logger,
      dir: options.dir,
      configFile,
      validate: () => [],
      wanted: () => true,
      render: (spec) => renderDnsmasqVms({ ...spec, leaseFile, serversFile: this.#serversFile }),
      checkArgv: (file) => [...command, '--test', `--conf-file=${file}`],
      runArgv: [...command, '--keep-in-foreground', '--log-facility=-', `--conf-file=${configFile}`],
      process: { ready: /\bstarted, version\b/ },
    });
  }

  /** Starts (or restarts, when the network changed) the VMs' dnsmasq with `whitelist`'s names. */
  async apply(spec: VmDnsSpec, whitelist: readonly WhitelistEntry[]): Promise<void> {
    await this.#writeNames(spec.upstreams, whitelist);
    await this.#daemon.apply(spec);
  }

  /** The names of a new whitelist, live: dnsmasq re-reads them on SIGHUP (and forgets its cache). */
  async setWhitelist(upstreams: readonly string[], whitelist: readonly WhitelistEntry[]): Promise<void> {
    await this.#writeNames(upstreams, whitelist);
    const pid = this.#daemon.process.pid;
    if (pid === undefined) throw new TabulaError('internal', 'the VMs\' resolver is not running: the new names apply once it is back');
    process.kill(pid, 'SIGHUP');
    this.#logger.info('vm-names-reloaded', { pid });
  }

  stop(): Promise<void> {
    return this.#daemon.stop();
  }

  /** Atomically, readable by the unprivileged user dnsmasq re-reads it as. */
  async #writeNames(upstreams: readonly string[], whitelist: readonly WhitelistEntry[]): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o711 });
    // An existing private directory must still let dnsmasq (as nobody) reach the names file.
    await chmod(this.#dir, 0o711);
    const tmp = `${this.#serversFile}.new`;
    await writeFile(tmp, renderDnsmasqVmsServers(upstreams, whitelist), { mode: 0o644 });
    await rename(tmp, this.#serversFile);
  }
}
