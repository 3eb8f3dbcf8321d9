#!/usr/bin/env node
import { BusSession } from './adapters/dbus/bus-session.js';
import { PolkitAuthorizer } from './adapters/dbus/polkit-authorizer.js';
import { FilePoolStateStore } from './adapters/file-pool-state-store.js';
import { runProcess } from './adapters/process-command.js';
import { JournalLogger } from './adapters/journal-logger.js';
import { LibvirtDbus } from './adapters/libvirt-dbus.js';
import { QemuImgDisks } from './adapters/qemu-img-disks.js';
import { randomSecret } from './adapters/random-secret.js';
import { SdNotifier } from './adapters/sd-notifier.js';
import { SystemClock } from './adapters/system-clock.js';
import { ConntrackTool } from './adapters/conntrack.js';
import { IpLinks } from './adapters/ip-links.js';
import { NftFirewall } from './adapters/nft-firewall.js';
import { SupervisorService, type SupervisorApi } from './api/dbus/service.js';
import { Dispatcher, type SessionStarted } from './app/dispatcher.js';
import { FactoryReset } from './app/factory-reset.js';
import { Listeners } from './app/listeners.js';
import { PoolAdmin } from './app/pool-admin.js';
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
import type { Config } from './config/config.js';
import { asTabulaError } from './domain/errors.js';
import { goldenProblem } from './domain/golden.js';
import type { SessionLogEntry } from './domain/session-log.js';
import { VERSION } from './version.js';
import { openSignalPort, openStationEndpoint, StationLanServices } from './wiring/station-lan.js';
import { reportBlocked, startVmNetwork } from './wiring/vm-network.js';
import { configReloader, loadConfig } from './wiring/admin.js';
import { startAdminWeb } from './wiring/admin-web.js';
import { startImages } from './wiring/images.js';

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
  const sessionsStarted = new Listeners<SessionStarted>(logger, 'session-listener-failed');
  const sessionsEnded = new Listeners<SessionLogEntry>(logger, 'session-listener-failed');
  const sessionLog = new JournaledSessionLog(new JsonlSessionLog(`${config.stateDir}/sessions`), logger, (e) => {
    metrics.sessionEnded(e);
    sessionsEnded.emit(e);
  });
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
  // Staff's pool changes (drained, resized) are taken up before the first round.
  const poolAdmin = new PoolAdmin(config, { keeper: reconciler, store: new FilePoolStateStore(`${config.stateDir}/pools.json`), logger });
  await poolAdmin.load();
  // Golden images: the store, switches and their rollback (docs/admin.md).
  const images = await startImages(config, { disks, pools: poolAdmin, keeper: reconciler, libvirt, logger });
  const vmNet = await startVmNetwork(config, logger);
  const lanServices = new StationLanServices(config.stateDir, logger);
  const reloadConfig = configReloader(args.config, poolAdmin, lanServices, logger);
  const factoryReset = new FactoryReset({
    command: () => reconciler.config().factoryResetCommand,
    env: () => ({ TABULA_CONFIG: args.config, TABULA_STATE_DIR: reconciler.config().stateDir }),
    run: runProcess,
    logger,
  });
  // The one API: D-Bus objects and the admin web page are both its clients.
  const api: SupervisorApi = {
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
    onSessionStarted: (l) => sessionsStarted.add(l),
    onSessionEnded: (l) => sessionsEnded.add(l),
    endSession: (id) => reconciler.endSession(id),
    drain: (pool) => poolAdmin.drain(pool),
    undrain: (pool) => poolAdmin.undrain(pool),
    resize: (pool, size) => poolAdmin.resize(pool, size),
    setTimeouts: (pool, changes) => poolAdmin.setTimeouts(pool, changes),
    images: images.api,
    reloadConfig,
    factoryReset: (keepImages, confirm) => factoryReset.run(keepImages, confirm),
    authorizer: new PolkitAuthorizer(() => session.current()),
  };
  const service = new SupervisorService(api, VERSION);
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      logger.notice('supervisor-stopping', { signal: sig });
      notifier.stopping();
      stop.abort();
    });
  }

  // SIGHUP re-reads the config; an invalid one is refused (and logged) and the old one kept.
  process.on('SIGHUP', () => void reloadConfig().catch(() => undefined));

  logger.notice('supervisor-starting', { version: VERSION, config: args.config, pools: config.pools.map((p) => `${p.name}:${p.size}`).join(',') });
  const events = libvirt.onDomainEvent(() => reconciler.poke());
  // A client leaving a console may end a session: look now rather than at the next tick.
  const graphics = libvirt.onGraphicsEvent((e) => e.phase === 'disconnect' && reconciler.poke());
  // On every connection, the first and each after the bus restarted: signals, objects, the name.
  session.onConnected(async (bus) => {
    await libvirt.attach(bus);
    await service.attach(bus);
  });
  // The admin web page (docs/admin-web.md): a second client of the same API, on the management side only.
  const adminWeb = await startAdminWeb(config, api, { clock, logger, metrics, config: () => reconciler.config() });
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
      dispatcher = new Dispatcher(
        reconciler.config(),
        { libvirt, conntrack, clock, logger, newSecret: randomSecret, neighbours: new IpNeighbours(), sessionLog, metrics, onSessionStarted: (e) => sessionsStarted.emit(e), ...(faults ? { faults } : {}) },
        reconciler,
      );
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
    images.dispose();
    await adminWeb?.stop();
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
