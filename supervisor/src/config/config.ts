import { parse as parseToml } from 'smol-toml';
import type { ZodIssue } from 'zod';
import { TabulaError } from '../domain/errors.js';
import type { SessionLimits } from '../domain/session-limits.js';
import { ipv4String, stationLanProblems, subnetOf, type StationLanSpec } from '../domain/station-lan.js';
import { parseWhitelist, type WhitelistEntry } from '../domain/whitelist.js';
import { configSchema, type RawConfig } from './schema.js';
import { isIpv4 } from '../domain/firewall.js';

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
  readonly stations?: StationsConfig;
  readonly vmNetwork?: VmNetworkConfig;
  readonly pools: readonly PoolConfig[];
}

/** Parses and validates a config file's text. Throws config-invalid naming the key. */
export function parseConfig(text: string, source: string): Config {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    throw new TabulaError('config-invalid', `${source}: not valid TOML: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new TabulaError('config-invalid', `${source}: ${parsed.error.issues.map(describeIssue).join('; ')}`);
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
      bootTimeoutMs: (p.boot_timeout ?? s.boot_timeout) * 1000,
      consoleTickets: p.console_tickets,
      limits: { idleTimeoutMs: p.idle_timeout * 1000, maxSessionMs: p.max_session * 1000, warnBeforeMs: p.session_warning * 1000 },
    }),
  );
  checkPoolsApart(pools, source);
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
    if (problems.length > 0) throw new TabulaError('config-invalid', `${source}: stations: ${problems.join('; ')}`);
  }
  if (stations) checkStationPorts(stations, pools, source);
  const vmNetwork = parsed.data.vm_network && vmNetworkOf(parsed.data.vm_network, stations, source);
  return deepFreeze({
    source,
    stateDir: s.state_dir,
    hypervisor: s.hypervisor,
    maxParallelBoots: s.max_parallel_boots,
    heartbeatMs: s.heartbeat * 1000,
    spiceListen: stations?.consoleAddress ?? s.spice_listen,
    ...metricsListen(s.metrics_listen, source),
    startMode: s.start_mode,
    memoryReserveMiB: s.memory_reserve,
    diskReserveMiB: s.disk_reserve,
    ...(stations ? { stations } : {}),
    ...(vmNetwork ? { vmNetwork } : {}),
    pools,
  });
}

function vmNetworkOf(raw: NonNullable<RawConfig['vm_network']>, stations: StationsConfig | undefined, source: string): VmNetworkConfig {
  const [serverAddress = '', prefix = ''] = raw.address.split('/');
  const prefixLength = Number(prefix);
  const bad = (why: string) => new TabulaError('config-invalid', `${source}: vm_network.${why}`);
  if (!isIpv4(serverAddress) || !Number.isInteger(prefixLength) || prefixLength < 8 || prefixLength > 30) throw bad(`address: ${JSON.stringify(raw.address)} is not an IPv4 address with a prefix of 8 to 30`);
  const net = subnetOf(serverAddress, prefixLength);
  const subnet = `${ipv4String(net.network)}/${prefixLength}`;
  // The station LAN and the consoles are never a VM's business, whatever the whitelist says.
  const forbidden = stations ? [`${ipv4String(subnetOf(stations.address, stations.lan.prefixLength).network)}/${stations.lan.prefixLength}`, `${stations.consoleAddress}/32`] : [];
  let whitelist: WhitelistEntry[];
  try {
    whitelist = parseWhitelist(raw.whitelist, [subnet, ...forbidden]);
  } catch (e) {
    throw bad(`whitelist: ${(e as Error).message}`);
  }
  if (stations && raw.nft_table === stations.nftTable) throw bad(`nft_table: "${raw.nft_table}" is also the station LAN's table`);
  if (stations && raw.bridge === stations.interface) throw bad(`bridge: "${raw.bridge}" is the station interface: VMs and stations never share a link`);
  if (whitelist.some((w) => w.kind === 'name') && raw.upstream_dns.length === 0) throw bad('upstream_dns: whitelisted names need at least one DNS server to resolve them');
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

function metricsListen(text: string, source: string): { metricsListen?: { host: string; port: number } } {
  if (text === '') return {};
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i);
  const port = Number(text.slice(i + 1));
  if (host.split('.').some((o) => Number(o) > 255) || port < 1 || port > 65535) {
    throw new TabulaError('config-invalid', `${source}: supervisor.metrics_listen: ${JSON.stringify(text)} is not a valid IPv4 address and port`);
  }
  return { metricsListen: { host, port } };
}

function checkPoolsApart(pools: readonly PoolConfig[], source: string): void {
  const problems: string[] = [];
  pools.forEach((p, i) => {
    if (p.spicePortBase + Math.max(p.size, 1) - 1 > 65535) problems.push(`pool[${i}].spice_port_base: ${p.name}'s ports run past 65535`);
    pools.slice(0, i).forEach((q, j) => {
      if (q.name === p.name) problems.push(`pool[${i}].name: '${p.name}' is also the name of pool[${j}]`);
      if (q.storageDir === p.storageDir) problems.push(`pool[${i}].storage_dir: ${p.storageDir} is also used by pool[${j}]`);
      const overlap = p.spicePortBase < q.spicePortBase + q.size && q.spicePortBase < p.spicePortBase + p.size;
      if (overlap) problems.push(`pool[${i}].spice_port_base: ports ${p.spicePortBase}-${p.spicePortBase + p.size - 1} overlap pool[${j}] (${q.name})`);
    });
  });
  if (problems.length > 0) throw new TabulaError('config-invalid', `${source}: ${problems.join('; ')}`);
}

function checkStationPorts(st: StationsConfig, pools: readonly PoolConfig[], source: string): void {
  const problems: string[] = [];
  if (st.signalPort === st.spicePort) problems.push(`stations.spice_port: ${st.spicePort} is also the signal port`);
  if (st.httpPort !== 0 && (st.httpPort === st.signalPort || st.httpPort === st.spicePort)) problems.push(`stations.http_port: ${st.httpPort} is also the signal or Spice port`);
  if (st.address === st.consoleAddress) problems.push('stations.console_address: must differ from stations.address, or consoles would sit on the station LAN');
  pools.forEach((p, i) => {
    for (const [key, port] of [['signal_port', st.signalPort], ['spice_port', st.spicePort]] as const) {
      if (port >= p.spicePortBase && port < p.spicePortBase + p.size) problems.push(`stations.${key}: ${port} is inside pool[${i}]'s console ports`);
    }
  });
  if (problems.length > 0) throw new TabulaError('config-invalid', `${source}: ${problems.join('; ')}`);
}

function describeIssue(issue: ZodIssue): string {
  const key = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').replace(/^\./, '');
  if (issue.code === 'unrecognized_keys') {
    const where = key === '' ? '' : `${key}: `;
    return `${where}unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  }
  return `${key || '(top level)'}: ${issue.message}`;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
