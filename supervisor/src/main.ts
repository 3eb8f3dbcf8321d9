#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { BusSession } from './adapters/dbus/bus-session.js';
import { JournalLogger } from './adapters/journal-logger.js';
import { LibvirtDbus } from './adapters/libvirt-dbus.js';
import { QemuImgDisks } from './adapters/qemu-img-disks.js';
import { randomSecret } from './adapters/random-secret.js';
import { SdNotifier } from './adapters/sd-notifier.js';
import { SystemClock } from './adapters/system-clock.js';
import { ConntrackTool } from './adapters/conntrack.js';
import { IpLinks } from './adapters/ip-links.js';
import { NftFirewall } from './adapters/nft-firewall.js';
import { TcpStationListener } from './adapters/tcp-station-listener.js';
import { SupervisorService } from './api/dbus/service.js';
import { serveStation } from './api/station/protocol.js';
import { Dispatcher } from './app/dispatcher.js';
import { JournaledSessionLog } from './app/journaled-session-log.js';
import { Reconciler, type SupervisorStatus } from './app/reconciler.js';
import { SessionActivity } from './app/activity.js';
import { Metrics } from './app/metrics.js';
import { SupervisorMetrics } from './app/supervisor-metrics.js';
import { HttpMetricsServer } from './adapters/http-metrics-server.js';
import { renderPrometheus } from './render/prometheus.js';
import { JsonlSessionLog } from './adapters/jsonl-session-log.js';
import { IpNeighbours } from './adapters/ip-neighbours.js';
import { ProcessFaults } from './adapters/process-faults.js';
import { ProcHostResources } from './adapters/proc-host-resources.js';
import { StationHttpServer } from './adapters/station-http-server.js';
import { DnsmasqService } from './adapters/dnsmasq-service.js';
import { VmDnsService } from './adapters/vm-dns-service.js';
import { NftVmNetwork } from './adapters/nft-vm-network.js';
import { FileWhitelistStore } from './adapters/file-whitelist-store.js';
import { WhitelistKeeper } from './app/whitelist-keeper.js';
import { BlockedReporter } from './app/blocked-reporter.js';
import { ChronyService } from './adapters/chrony-service.js';
import { renderClientConf } from './render/station-config.js';
import { stationsFromLeases, type StationView } from './domain/station-lan.js';
import type { Disposable } from './ports/disposable.js';
import { parseConfig, type Config } from './config/config.js';
import { asTabulaError, TabulaError } from './domain/errors.js';
import { goldenProblem } from './domain/golden.js';
import { VERSION } from './version.js';

const DEFAULT_CONFIG = '/etc/tabula/supervisor.toml';
const USAGE = `usage: tabula-supervisor [--config FILE] [--check-config] [--debug]

Keeps pools of disposable linked-clone VMs ready for kiosk stations.
  --config FILE    configuration (default ${DEFAULT_CONFIG}, or $TABULA_CONFIG)
  --check-config   validate the configuration and golden images, then exit
  --debug          log debug records too
Exit codes: 0 ok, 1 runtime failure, 2 usage, 78 invalid configuration.`;

const EX_USAGE = 2;
const EX_CONFIG = 78;

interface Args {
  config: string;
  checkOnly: boolean;
  debug: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { config: process.env['TABULA_CONFIG'] ?? DEFAULT_CONFIG, checkOnly: false, debug: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config' && argv[i + 1] !== undefined) args.config = argv[++i] as string;
    else if (a === '--check-config') args.checkOnly = true;
    else if (a === '--debug') args.debug = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else {
      process.stderr.write(`tabula-supervisor: unknown argument ${a}\n${USAGE}\n`);
      process.exit(EX_USAGE);
    }
  }
  return args;
}

async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new TabulaError('config-unreadable', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseConfig(text, path);
}

/** Golden-image problems, for --check-config (the daemon itself reports them per pool and keeps running). */
async function checkGoldenImages(config: Config, disks: QemuImgDisks): Promise<string[]> {
  const problems: string[] = [];
  for (const pool of config.pools) {
    try {
      const problem = goldenProblem(pool.goldenImage, await disks.inspect(pool.goldenImage));
      if (problem) problems.push(`pool ${pool.name}: ${problem}`);
    } catch (e) {
      problems.push(`pool ${pool.name}: ${asTabulaError(e).message}`);
    }
  }
  return problems;
}

/**
 * Opens a listener on the station LAN, retrying every 5 s while its address is
 * not there yet (the LAN may come up after the supervisor); closed on stop.
 */
async function listenOnLan(what: string, address: string, port: number, open: () => Promise<Disposable>, clock: SystemClock, logger: JournalLogger, stop: AbortSignal): Promise<void> {
  let complained = false;
  while (!stop.aborted) {
    try {
      const listener = await open();
      logger.notice(`${what}-open`, { address, port });
      stop.addEventListener('abort', () => listener.dispose(), { once: true });
      return;
    } catch (e) {
      if (!complained) logger.err(`${what}-unavailable`, { address, port, error: asTabulaError(e).message, retry: 'every 5 s' });
      complained = true;
      await clock.sleep(5000, stop);
    }
  }
}

function openSignalPort(
  stations: NonNullable<Config['stations']>,
  dispatcher: Dispatcher,
  reconciler: Reconciler,
  activity: SessionActivity,
  metrics: SupervisorMetrics,
  clock: SystemClock,
  logger: JournalLogger,
  stop: AbortSignal,
): Promise<void> {
  const { address, signalPort: port, spicePort } = stations;
  const open = () =>
    new TcpStationListener(logger).listen(address, port, { maxLineBytes: 1024, maxConnections: 64, maxPerStation: 4 }, (conn) =>
      serveStation(conn, {
        dispatcher,
        logger,
        sleep: (ms, signal) => clock.sleep(ms, signal),
        status: (): SupervisorStatus => reconciler.status(),
        onSessionEnded: (l) => reconciler.onSessionEnded(l),
        spice: { host: address, port: spicePort },
        defaultPool: reconciler.status().pools[0]?.name,
        pingEveryMs: 15_000,
        silenceLimitMs: 45_000,
        activity,
        limitsOf: (pool) => reconciler.config().pools.find((p) => p.name === pool)?.limits,
        now: () => clock.now(),
        metrics,
      }),
    );
  return listenOnLan('signal-port', address, port, open, clock, logger, stop);
}

/** DHCP and NTP for the stations, as the config in force says; a refused change keeps the old daemons serving. */
class StationLanServices {
  readonly #dhcp: DnsmasqService;
  readonly #ntp: ChronyService;
  readonly #logger: JournalLogger;

  constructor(stateDir: string, logger: JournalLogger) {
    this.#dhcp = new DnsmasqService({ dir: `${stateDir}/lan/dhcp`, logger });
    this.#ntp = new ChronyService({ dir: `${stateDir}/lan/ntp`, logger });
    this.#logger = logger;
  }

  async apply(config: Config): Promise<void> {
    const st = config.stations;
    const jobs: Array<[string, () => Promise<void>]> = [
      ['dhcp', () => (st?.dhcp ? this.#dhcp.apply(st.lan) : this.#dhcp.stop())],
      ['ntp', () => (st?.lan.ntp ? this.#ntp.apply(st.lan) : this.#ntp.stop())],
    ];
    for (const [service, job] of jobs) {
      try {
        await job();
      } catch (e) {
        // Stations with an address of their own still reach the signal port: the supervisor goes on.
        const err = asTabulaError(e);
        this.#logger.err('station-lan-service-failed', { service, code: err.code, error: err.message });
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.#dhcp.stop(), this.#ntp.stop()]);
  }

  /** Stations with a current lease; none without DHCP. */
  async stations(config: Config, now: number): Promise<StationView[]> {
    const st = config.stations;
    if (!st?.dhcp) return [];
    return stationsFromLeases(await this.#dhcp.leases(), st.lan.leaseSeconds, now);
  }
}

/**
 * The VMs' network: the bridge, the VM table (applied before the host routes
 * anything, so VMs are never unconfined), and the resolver of whitelisted
 * names. A failure leaves VMs without a way out, never with an open one.
 */
async function startVmNetwork(config: Config, logger: JournalLogger): Promise<{ keeper: WhitelistKeeper; dns: VmDnsService; blocked: BlockedReporter } | undefined> {
  const net = config.vmNetwork;
  if (!net) return undefined;
  const links = new IpLinks();
  const dns = new VmDnsService({ dir: `${config.stateDir}/vm-network`, logger });
  const network = new NftVmNetwork();
  const keeper = new WhitelistKeeper(net, { network, resolver: dns, store: new FileWhitelistStore(`${config.stateDir}/whitelist.json`), logger });
  try {
    await links.ensureBridge(net.bridge, net.serverAddress, net.prefixLength);
    const entries = await keeper.load();
    await network.apply(keeper.spec());
    await links.enableForwarding();
    await dns.apply({ bridge: net.bridge, subnet: net.subnet, serverAddress: net.serverAddress, leaseSeconds: net.leaseSeconds, upstreams: net.upstreams, table: net.table, dnsTtl: net.dnsTtl }, entries);
    logger.notice('vm-network-ready', { bridge: net.bridge, subnet: net.subnet, whitelist: keeper.list().length });
  } catch (e) {
    const err = asTabulaError(e);
    logger.err('vm-network-failed', { code: err.code, error: err.message });
  }
  return { keeper, dns, blocked: new BlockedReporter(network, net.table, logger) };
}

/** How often the VMs' blocked attempts are summed up in the journal. */
const BLOCKED_REPORT_MS = 15_000;

async function reportBlocked(reporter: BlockedReporter, clock: SystemClock, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    await clock.sleep(BLOCKED_REPORT_MS, stop);
    if (!stop.aborted) await reporter.report();
  }
}

/** What stations fetch over HTTP: client.conf and the slideshow, from the config in force. */
function openStationEndpoint(reconciler: Reconciler, clock: SystemClock, logger: JournalLogger, stop: AbortSignal): Promise<void> {
  const st = reconciler.config().stations;
  if (!st || st.httpPort === 0) return Promise.resolve();
  const view = () => {
    const c = reconciler.config();
    const s = c.stations ?? st;
    return renderClientConf({
      serverAddress: s.address,
      signalPort: s.signalPort,
      spicePort: s.spicePort,
      slideshowUrl: `http://${s.address}${s.httpPort === 80 ? '' : `:${s.httpPort}`}/slideshow/`,
      pools: c.pools.map((p) => p.name),
    });
  };
  const open = () => new StationHttpServer().listen(st.address, st.httpPort, { clientConf: view, slideshowDir: () => reconciler.config().stations?.slideshowDir ?? st.slideshowDir });
  return listenOnLan('station-endpoint', st.address, st.httpPort, open, clock, logger, stop);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const logger = new JournalLogger(undefined, { debug: args.debug });
  let config: Config;
  try {
    config = await loadConfig(args.config);
  } catch (e) {
    const err = asTabulaError(e, 'config-invalid');
    logger.err('config-refused', { code: err.code, error: err.message });
    return EX_CONFIG;
  }
  const disks = new QemuImgDisks();
  if (args.checkOnly) {
    const problems = await checkGoldenImages(config, disks);
    for (const p of problems) process.stderr.write(`tabula-supervisor: ${p}\n`);
    if (problems.length === 0) process.stdout.write(`${args.config}: ok (${config.pools.length} pool(s))\n`);
    return problems.length === 0 ? 0 : EX_CONFIG;
  }

  const session = new BusSession(logger);
  let faults: ProcessFaults | undefined;
  try {
    faults = process.env['TABULA_FAULT'] ? new ProcessFaults(process.env['TABULA_FAULT']) : undefined;
  } catch (e) {
    logger.err('fault-spec-invalid', { error: asTabulaError(e).message });
    return EX_USAGE;
  }
  // A test switch only: say loudly that this process will kill itself.
  if (faults) logger.warning('fault-injection-armed', { points: faults.points().join(',') });
  const notifier = new SdNotifier();
  const libvirt = new LibvirtDbus(() => session.current());
  const clock = new SystemClock();
  const stations = config.stations;
  const conntrack = new ConntrackTool();
  if (stations) {
    try {
      // VM consoles listen here; it must exist before the first VM starts.
      await new IpLinks().ensureDummyAddress(stations.consoleInterface, stations.consoleAddress);
    } catch (e) {
      const err = asTabulaError(e);
      logger.err('console-address-failed', { code: err.code, error: err.message });
      return 1;
    }
  }
  const activity = new SessionActivity(clock.now());
  const metricsRegistry = new Metrics({ onCollectError: (e) => logger.warning('metrics-collect-failed', { error: asTabulaError(e).message }) });
  let dispatcher: Dispatcher | undefined;
  const metrics: SupervisorMetrics = new SupervisorMetrics(metricsRegistry, {
    // Read at a scrape only, which is served once the reconciler exists.
    status: (): SupervisorStatus => reconciler.status(),
    queueLengths: () => dispatcher?.queueLengths() ?? new Map(),
  });
  const sessionLog = new JournaledSessionLog(new JsonlSessionLog(`${config.stateDir}/sessions`), logger, (e) => metrics.sessionEnded(e));
  const reconciler: Reconciler = new Reconciler(config, {
    libvirt,
    disks,
    newSecret: randomSecret,
    clock,
    logger,
    notifier,
    activity,
    sessionLog,
    metrics,
    resources: new ProcHostResources(),
    ...(faults ? { faults } : {}),
    ...(stations ? { firewall: new NftFirewall(), conntrack } : {}),
  });
  const vmNet = await startVmNetwork(config, logger);
  const lanServices = new StationLanServices(config.stateDir, logger);
  const service = new SupervisorService(
    {
      ...(vmNet
        ? {
            whitelist: {
              list: () => vmNet.keeper.list(),
              set: (entries: string[]) => vmNet.keeper.set(entries),
              add: (entry: string) => vmNet.keeper.add(entry),
              remove: (entry: string) => vmNet.keeper.remove(entry),
            },
          }
        : {}),
      status: () => reconciler.status(),
      onStatus: (l) => reconciler.onStatus(l),
      recycle: (name) => reconciler.recycle(name),
      sessions: (since) => sessionLog.read(since),
      wipe: () => reconciler.wipe('admin'),
      stations: () => lanServices.stations(reconciler.config(), clock.now()),
    },
    VERSION,
  );
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      logger.notice('supervisor-stopping', { signal: sig });
      notifier.stopping();
      stop.abort();
    });
  }

  // SIGHUP re-reads the config; an invalid one is refused and the old one kept.
  process.on('SIGHUP', () => {
    loadConfig(args.config).then(
      (next) =>
        reconciler
          .reconfigure(next)
          .then(() => lanServices.apply(next))
          .then(() => logger.notice('config-reloaded', { config: args.config, pools: next.pools.map((p) => `${p.name}:${p.size}`).join(',') })),
      (e: unknown) => {
        const err = asTabulaError(e, 'config-invalid');
        logger.err('config-reload-refused', { code: err.code, error: err.message });
      },
    );
  });

  logger.notice('supervisor-starting', { version: VERSION, config: args.config, pools: config.pools.map((p) => `${p.name}:${p.size}`).join(',') });
  const events = libvirt.onDomainEvent(() => reconciler.poke());
  // A client leaving a console may end a session: look now rather than at the next tick.
  const graphics = libvirt.onGraphicsEvent((e) => e.phase === 'disconnect' && reconciler.poke());
  // On every connection, the first and each after the bus restarted: signals, objects, the name.
  session.onConnected(async (bus) => {
    await libvirt.attach(bus);
    await service.attach(bus);
  });
  try {
    try {
      await session.start();
    } catch (e) {
      const err = asTabulaError(e, 'bus-unavailable');
      logger.err(err.code === 'bus-name-taken' ? 'bus-name-taken' : 'bus-unavailable', { code: err.code, error: err.message });
      return 1;
    }
    // start_mode = "wipe": nothing of before is adopted; the first round builds the pools afresh.
    if (config.startMode === 'wipe') await reconciler.wipe('start');
    if (stations) {
      dispatcher = new Dispatcher(config, { libvirt, conntrack, clock, logger, newSecret: randomSecret, neighbours: new IpNeighbours(), sessionLog, metrics, ...(faults ? { faults } : {}) }, reconciler);
      void openSignalPort(stations, dispatcher, reconciler, activity, metrics, clock, logger, stop.signal);
      void openStationEndpoint(reconciler, clock, logger, stop.signal);
      await lanServices.apply(config);
    }
    if (config.metricsListen) {
      const { host, port } = config.metricsListen;
      try {
        const server = await new HttpMetricsServer().listen(host, port, () => renderPrometheus(metricsRegistry.collect()));
        stop.signal.addEventListener('abort', () => server.dispose(), { once: true });
        logger.notice('metrics-listening', { address: host, port: server.port });
      } catch (e) {
        // Metrics are for the operators' dashboards: without them the kiosks are still served.
        const err = asTabulaError(e);
        logger.err('metrics-unavailable', { code: err.code, error: err.message });
      }
    }
    if (vmNet) void reportBlocked(vmNet.blocked, clock, stop.signal);
    // VMs are left running on exit: the next start adopts them.
    await reconciler.run(stop.signal);
    return 0;
  } catch (e) {
    const err = asTabulaError(e);
    logger.err('supervisor-failed', { code: err.code, error: err.message });
    return 1;
  } finally {
    events.dispose();
    graphics.dispose();
    service.stop();
    session.close();
    await lanServices.stop().catch(() => undefined);
    // The VM table stays: running VMs keep their confinement while no supervisor runs.
    await vmNet?.dns.stop().catch(() => undefined);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`<2>event=supervisor-crashed error=${JSON.stringify(String((e as Error)?.stack ?? e))}\n`);
    process.exit(1);
  },
);
