import { parse as parseToml } from 'smol-toml';
import type { ZodIssue } from 'zod';
import { TabulaError } from '../domain/errors.js';
import type { SessionLimits } from '../domain/session-limits.js';
import { ipv4String, stationLanProblems, subnetOf, type StationLanSpec } from '../domain/station-lan.js';
import { parseWhitelist, type WhitelistEntry } from '../domain/whitelist.js';
import { configSchema, POOL_SIZE_MAX, type RawConfig } from './schema.js';
import type { PoolImages } from '../domain/golden-switch.js';
import type { PoolTimeouts } from '../domain/pool-timeouts.js';
import { isIpv4 } from '../domain/firewall.js';
import { keyLocator, keyName, type KeyPath } from './locate.js';

/** "line 14: " before a problem with the key at `path`, or "" when the file does not have it. */
type Where = (path: KeyPath) => string;

export interface PoolConfig {
  readonly name: string;
  readonly goldenImage: string;
  readonly size: number;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly spicePortBase: number;
  readonly storageDir: string;
  readonly firmware: 'bios' | 'uefi';
  readonly video: 'qxl' | 'vga' | 'virtio';
  readonly kernel?: string;
  readonly initrd?: string;
  readonly cmdline?: string;
  readonly bootTimeoutMs: number;
  readonly consoleTickets: boolean;
  readonly limits: SessionLimits;
  /** Set when staff switched the golden image (then goldenImage, kernel and initrd are the switched image's). */
  readonly goldenSwitch?: { readonly previous?: string; readonly confirmed: boolean };
}

export interface StationsConfig {
  readonly interface: string;
  readonly address: string;
  readonly signalPort: number;
  readonly spicePort: number;
  readonly connectWaitMs: number;
  readonly forwardGraceMs: number;
  readonly consoleAddress: string;
  readonly consoleInterface: string;
  readonly nftTable: string;
  /** 0: no HTTP endpoint for stations. */
  readonly httpPort: number;
  readonly slideshowDir: string;
  /** DHCP and NTP for the stations, as the supervisor's daemons serve them; absent with `dhcp = false`. */
  readonly lan: StationLanSpec;
  readonly dhcp: boolean;
}

/** The VMs' network (see docs/vm-network.md). */
export interface VmNetworkConfig {
  readonly bridge: string;
  readonly serverAddress: string;
  readonly prefixLength: number;
  /** Canonical: `10.88.0.0/24`. */
  readonly subnet: string;
  readonly upstreams: readonly string[];
  /** The whitelist as configured: the factory default until staff change it (then the state directory's copy rules). */
  readonly whitelist: readonly WhitelistEntry[];
  /** Ranges no whitelist entry may open: the station LAN and the consoles' address. */
  readonly forbidden: readonly string[];
  readonly table: string;
  readonly leaseSeconds: number;
  readonly dnsTtl: number;
  readonly resolvedTimeout: number;
  readonly masquerade: boolean;
}

/** The admin web page (docs/admin-web.md). */
export interface AdminConfig {
  /** Addresses to listen on; empty: every address. */
  readonly listen: readonly string[];
  readonly httpsPort: number;
  /** Plain HTTP on 127.0.0.1 only (development, tests). */
  readonly httpLoopbackPort?: number;
  /** Its certificate, key and password hash: STATE_DIR/admin. */
  readonly dir: string;
  /** A login ends after this long without a request. */
  readonly sessionIdleMs: number;
}

export interface Config {
  readonly source: string;
  readonly stateDir: string;
  readonly hypervisor: 'kvm' | 'qemu';
  readonly maxParallelBoots: number;
  readonly heartbeatMs: number;
  /** Where VM consoles listen: the stations' console address when there is a station LAN. */
  readonly spiceListen: string;
  /** Where Prometheus scrapes the metrics; absent when switched off. */
  readonly metricsListen?: { readonly host: string; readonly port: number };
  /** At start-up: take over what libvirt has ("adopt"), or remove everything Tabula owns first ("wipe"). */
  readonly startMode: 'adopt' | 'wipe';
  readonly memoryReserveMiB: number;
  readonly diskReserveMiB: number;
  /** What FactoryReset runs (argv), before its "keep-images" or "erase-all". */
  readonly factoryResetCommand: readonly string[];
  readonly stations?: StationsConfig;
  readonly vmNetwork?: VmNetworkConfig;
  /** Absent: no admin web page. */
  readonly admin?: AdminConfig;
  readonly pools: readonly PoolConfig[];
}

/** Parses and validates a config file's text. Throws config-invalid naming the file, the line and the key. */
export function parseConfig(text: string, source: string): Config {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    const line = (e as { line?: unknown }).line;
    const at = typeof line === 'number' ? `line ${line}: ` : '';
    throw new TabulaError('config-invalid', `${source}: ${at}not valid TOML: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const locate = keyLocator(text);
  const where: Where = (path) => {
    const line = locate(path);
    return line === undefined ? '' : `line ${line}: `;
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new TabulaError('config-invalid', `${source}: ${parsed.error.issues.map((i) => describeIssue(i, where)).join('; ')}`);
  }
  const s = parsed.data.supervisor;
  const pools = parsed.data.pool.map(
    (p): PoolConfig => ({
      name: p.name,
      goldenImage: p.golden_image,
      size: p.size,
      vcpus: p.vcpus,
      memoryMiB: p.memory,
      spicePortBase: p.spice_port_base,
      storageDir: p.storage_dir ?? `${s.state_dir}/pools/${p.name}`,
      firmware: p.firmware,
      video: p.video,
      ...(p.kernel === undefined ? {} : { kernel: p.kernel }),
      ...(p.initrd === undefined ? {} : { initrd: p.initrd }),
      ...(p.cmdline === undefined ? {} : { cmdline: p.cmdline }),
      consoleTickets: p.console_tickets,
      ...timing({ idle_timeout: p.idle_timeout, max_session: p.max_session, session_warning: p.session_warning, boot_timeout: p.boot_timeout ?? s.boot_timeout }),
    }),
  );
  refuse(source, poolProblems(pools, where));
  const st = parsed.data.stations;
  const stations: StationsConfig | undefined = st && {
    interface: st.interface,
    address: st.address,
    signalPort: st.signal_port,
    spicePort: st.spice_port,
    connectWaitMs: st.connect_wait * 1000,
    forwardGraceMs: st.forward_grace * 1000,
    consoleAddress: st.console_address,
    consoleInterface: st.console_interface,
    nftTable: st.nft_table,
    httpPort: st.http_port,
    slideshowDir: st.slideshow_dir ?? `${s.state_dir}/slideshow`,
    dhcp: st.dhcp,
    lan: {
      interface: st.interface,
      address: st.address,
      prefixLength: st.prefix_length,
      dhcpRange: { from: st.dhcp_range.split('-')[0] ?? '', to: st.dhcp_range.split('-')[1] ?? '' },
      leaseSeconds: st.lease_time,
      reservations: st.reservation,
      ntp: st.ntp,
      ...(st.ntp_upstream.length > 0 ? { ntpUpstream: st.ntp_upstream } : {}),
      ...(st.http_port === 0 ? {} : { httpPort: st.http_port }),
    },
  };
  if (stations?.dhcp || stations?.lan.ntp) {
    const problems = stationLanProblems(stations.lan);
    if (problems.length > 0) throw new TabulaError('config-invalid', `${source}: ${where(['stations'])}stations: ${problems.join('; ')}`);
  }
  if (stations) refuse(source, stationPortProblems(stations, pools, where));
  const vmNetwork = parsed.data.vm_network && vmNetworkOf(parsed.data.vm_network, stations, source, where);
  const admin = parsed.data.admin && adminOf(parsed.data.admin, s.state_dir, stations, source, where);
  return deepFreeze({
    source,
    stateDir: s.state_dir,
    hypervisor: s.hypervisor,
    maxParallelBoots: s.max_parallel_boots,
    heartbeatMs: s.heartbeat * 1000,
    spiceListen: stations?.consoleAddress ?? s.spice_listen,
    ...metricsListen(s.metrics_listen, source, where),
    startMode: s.start_mode,
    memoryReserveMiB: s.memory_reserve,
    diskReserveMiB: s.disk_reserve,
    factoryResetCommand: s.factory_reset_command,
    ...(stations ? { stations } : {}),
    ...(vmNetwork ? { vmNetwork } : {}),
    ...(admin ? { admin } : {}),
    pools,
  });
}

/** The admin page stays off the station LAN, and its ports clear of the stations' own. */
function adminOf(raw: NonNullable<RawConfig['admin']>, stateDir: string, stations: StationsConfig | undefined, source: string, where: Where): AdminConfig {
  const bad = (key: string, why: string) => new TabulaError('config-invalid', `${source}: ${where(['admin', key])}admin.${key}: ${why}`);
  if (stations && raw.listen.includes(stations.address)) throw bad('listen', `${stations.address} is the station LAN's address: the admin page is for the management side only`);
  if (raw.http_loopback_port === raw.https_port) throw bad('http_loopback_port', `${raw.https_port} is also https_port`);
  const stationPorts = stations ? [stations.signalPort, stations.spicePort, stations.httpPort] : [];
  if (stationPorts.includes(raw.https_port)) throw bad('https_port', `${raw.https_port} is also a station port (signal, Spice or HTTP)`);
  return {
    listen: raw.listen,
    httpsPort: raw.https_port,
    ...(raw.http_loopback_port === undefined ? {} : { httpLoopbackPort: raw.http_loopback_port }),
    dir: `${stateDir}/admin`,
    sessionIdleMs: raw.session_idle * 60_000,
  };
}

function vmNetworkOf(raw: NonNullable<RawConfig['vm_network']>, stations: StationsConfig | undefined, source: string, where: Where): VmNetworkConfig {
  const [serverAddress = '', prefix = ''] = raw.address.split('/');
  const prefixLength = Number(prefix);
  const bad = (key: string, why: string) => new TabulaError('config-invalid', `${source}: ${where(['vm_network', key])}vm_network.${key}: ${why}`);
  if (!isIpv4(serverAddress) || !Number.isInteger(prefixLength) || prefixLength < 8 || prefixLength > 30) throw bad('address', `${JSON.stringify(raw.address)} is not an IPv4 address with a prefix of 8 to 30`);
  const net = subnetOf(serverAddress, prefixLength);
  const subnet = `${ipv4String(net.network)}/${prefixLength}`;
  // The station LAN and the consoles are never a VM's business, whatever the whitelist says.
  const forbidden = stations ? [`${ipv4String(subnetOf(stations.address, stations.lan.prefixLength).network)}/${stations.lan.prefixLength}`, `${stations.consoleAddress}/32`] : [];
  let whitelist: WhitelistEntry[];
  try {
    whitelist = parseWhitelist(raw.whitelist, [subnet, ...forbidden]);
  } catch (e) {
    throw bad('whitelist', (e as Error).message);
  }
  if (stations && raw.nft_table === stations.nftTable) throw bad('nft_table', `"${raw.nft_table}" is also the station LAN's table`);
  if (stations && raw.bridge === stations.interface) throw bad('bridge', `"${raw.bridge}" is the station interface: VMs and stations never share a link`);
  if (whitelist.some((w) => w.kind === 'name') && raw.upstream_dns.length === 0) throw bad('upstream_dns', 'whitelisted names need at least one DNS server to resolve them');
  return {
    bridge: raw.bridge,
    serverAddress,
    prefixLength,
    subnet,
    upstreams: raw.upstream_dns,
    whitelist,
    forbidden,
    table: raw.nft_table,
    leaseSeconds: raw.lease_time,
    dnsTtl: raw.dns_ttl,
    resolvedTimeout: raw.resolved_timeout,
    masquerade: raw.masquerade,
  };
}

function metricsListen(text: string, source: string, where: Where): { metricsListen?: { host: string; port: number } } {
  if (text === '') return {};
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i);
  const port = Number(text.slice(i + 1));
  if (host.split('.').some((o) => Number(o) > 255) || port < 1 || port > 65535) {
    throw new TabulaError('config-invalid', `${source}: ${where(['supervisor', 'metrics_listen'])}supervisor.metrics_listen: ${JSON.stringify(text)} is not a valid IPv4 address and port`);
  }
  return { metricsListen: { host, port } };
}

function refuse(source: string, problems: readonly string[]): void {
  if (problems.length > 0) throw new TabulaError('config-invalid', `${source}: ${problems.join('; ')}`);
}

/** Problems between pools: names, storage and console ports each their own. */
function poolProblems(pools: readonly PoolConfig[], where: Where): string[] {
  const problems: string[] = [];
  const at = (i: number, key: string) => `${where(['pool', i, key])}pool[${i}].${key}`;
  pools.forEach((p, i) => {
    if (p.spicePortBase + Math.max(p.size, 1) - 1 > 65535) problems.push(`${at(i, 'spice_port_base')}: ${p.name}'s ports run past 65535`);
    pools.slice(0, i).forEach((q, j) => {
      if (q.name === p.name) problems.push(`${at(i, 'name')}: '${p.name}' is also the name of pool[${j}]`);
      if (q.storageDir === p.storageDir) problems.push(`${at(i, 'storage_dir')}: ${p.storageDir} is also used by pool[${j}]`);
      const overlap = p.spicePortBase < q.spicePortBase + q.size && q.spicePortBase < p.spicePortBase + p.size;
      if (overlap) problems.push(`${at(i, 'spice_port_base')}: ports ${p.spicePortBase}-${p.spicePortBase + p.size - 1} overlap pool[${j}] (${q.name})`);
    });
  });
  return problems;
}

function stationPortProblems(st: StationsConfig, pools: readonly PoolConfig[], where: Where): string[] {
  const problems: string[] = [];
  const at = (key: string) => `${where(['stations', key])}stations.${key}`;
  if (st.signalPort === st.spicePort) problems.push(`${at('spice_port')}: ${st.spicePort} is also the signal port`);
  if (st.httpPort !== 0 && (st.httpPort === st.signalPort || st.httpPort === st.spicePort)) problems.push(`${at('http_port')}: ${st.httpPort} is also the signal or Spice port`);
  if (st.address === st.consoleAddress) problems.push(`${at('console_address')}: must differ from stations.address, or consoles would sit on the station LAN`);
  pools.forEach((p, i) => {
    for (const [key, port] of [['signal_port', st.signalPort], ['spice_port', st.spicePort]] as const) {
      if (port >= p.spicePortBase && port < p.spicePortBase + p.size) problems.push(`${at(key)}: ${port} is inside pool[${i}]'s console ports`);
    }
  });
  return problems;
}

/**
 * The config with one pool's size changed, checked as the file would be
 * (0 to POOL_SIZE_MAX VMs; console ports clear of other pools and of the
 * station ports). Throws invalid-argument naming what is wrong.
 */
export function withPoolSize(config: Config, pool: string, size: number): Config {
  if (!Number.isInteger(size) || size < 0 || size > POOL_SIZE_MAX) {
    throw new TabulaError('invalid-argument', `size ${size} is out of range: a pool keeps 0 to ${POOL_SIZE_MAX} VMs`);
  }
  if (!config.pools.some((p) => p.name === pool)) throw new TabulaError('not-found', `no pool named "${pool}"`);
  const pools = config.pools.map((p) => (p.name === pool ? { ...p, size } : p));
  const none: Where = () => '';
  const problems = [...poolProblems(pools, none), ...(config.stations ? stationPortProblems(config.stations, pools, none) : [])];
  if (problems.length > 0) throw new TabulaError('invalid-argument', `pool ${pool} cannot keep ${size} VMs: ${problems.join('; ')}`);
  return deepFreeze({ ...config, pools });
}

/** A pool's timeouts in seconds, by their keys in the config file. */
export function timeoutsOf(p: PoolConfig): PoolTimeouts {
  return { idle_timeout: p.limits.idleTimeoutMs / 1000, max_session: p.limits.maxSessionMs / 1000, session_warning: p.limits.warnBeforeMs / 1000, boot_timeout: p.bootTimeoutMs / 1000 };
}

/** The config with some of one pool's timeouts changed (already checked against their bounds). */
export function withPoolTimeouts(config: Config, pool: string, changes: Partial<PoolTimeouts>): Config {
  if (!config.pools.some((p) => p.name === pool)) throw new TabulaError('not-found', `no pool named "${pool}"`);
  const pools = config.pools.map((p) => {
    if (p.name !== pool) return p;
    return { ...p, ...timing({ ...timeoutsOf(p), ...changes }) };
  });
  return deepFreeze({ ...config, pools });
}

/** The timeouts in a pool's own terms (milliseconds). */
function timing(t: PoolTimeouts): Pick<PoolConfig, 'bootTimeoutMs' | 'limits'> {
  return { bootTimeoutMs: t.boot_timeout * 1000, limits: { idleTimeoutMs: t.idle_timeout * 1000, maxSessionMs: t.max_session * 1000, warnBeforeMs: t.session_warning * 1000 } };
}

/**
 * The config with one pool cloning from the image staff chose: its disk, and
 * its own kernel and initrd when it brings them (else the pool's configured
 * ones); the command line stays the pool's.
 */
export function withPoolImage(config: Config, pool: string, images: PoolImages): Config {
  if (!config.pools.some((p) => p.name === pool)) throw new TabulaError('not-found', `no pool named "${pool}"`);
  const { current, previous, confirmed } = images;
  const pools = config.pools.map((p) => {
    if (p.name !== pool) return p;
    const { kernel: _k, initrd: _i, ...rest } = p;
    const boot = current.kernel === undefined ? { ...(p.kernel === undefined ? {} : { kernel: p.kernel }), ...(p.initrd === undefined ? {} : { initrd: p.initrd }) } : { kernel: current.kernel, ...(current.initrd === undefined ? {} : { initrd: current.initrd }) };
    return { ...rest, ...boot, goldenImage: current.path, goldenSwitch: { ...(previous === undefined ? {} : { previous: previous.path }), confirmed } };
  });
  return deepFreeze({ ...config, pools });
}

function describeIssue(issue: ZodIssue, where: Where): string {
  const key = keyName(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const at = where([...issue.path, issue.keys[0] ?? '']);
    return `${at}${key === '' ? '' : `${key}: `}unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  }
  return `${where(issue.path)}${key || '(top level)'}: ${issue.message}`;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
