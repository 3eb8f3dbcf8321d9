#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import type { Bus } from './adapters/dbus/call.js';
import { connectSystemBus } from './adapters/dbus/connect.js';
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
import { Reconciler } from './app/reconciler.js';
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
 * Listens on the station LAN's signal port, retrying while the address is not
 * there yet (the LAN may come up after the supervisor).
 */
async function openSignalPort(
  address: string,
  port: number,
  spicePort: number,
  dispatcher: Dispatcher,
  reconciler: Reconciler,
  clock: SystemClock,
  logger: JournalLogger,
  stop: AbortSignal,
): Promise<void> {
  let complained = false;
  while (!stop.aborted) {
    try {
      const listener = await new TcpStationListener(logger).listen(address, port, { maxLineBytes: 1024, maxConnections: 64, maxPerStation: 4 }, (conn) =>
        serveStation(conn, {
          dispatcher,
          logger,
          sleep: (ms, signal) => clock.sleep(ms, signal),
          status: () => reconciler.status(),
          onSessionEnded: (l) => reconciler.onSessionEnded(l),
          spice: { host: address, port: spicePort },
          defaultPool: reconciler.status().pools[0]?.name,
          pingEveryMs: 15_000,
          silenceLimitMs: 45_000,
        }),
      );
      logger.notice('signal-port-open', { address, port });
      stop.addEventListener('abort', () => listener.dispose(), { once: true });
      return;
    } catch (e) {
      if (!complained) logger.err('signal-port-unavailable', { address, port, error: asTabulaError(e).message, retry: 'every 5 s' });
      complained = true;
      await clock.sleep(5000, stop);
    }
  }
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

  let bus: Bus;
  try {
    bus = await connectSystemBus();
  } catch (e) {
    const err = asTabulaError(e, 'bus-unavailable');
    logger.err('bus-unavailable', { code: err.code, error: err.message });
    return 1;
  }
  bus.on('error', (e: Error) => logger.err('bus-error', { error: e.message }));
  const notifier = new SdNotifier();
  const libvirt = new LibvirtDbus(bus);
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
  const reconciler = new Reconciler(config, {
    libvirt,
    disks,
    newSecret: randomSecret,
    clock,
    logger,
    notifier,
    ...(stations ? { firewall: new NftFirewall(), conntrack } : {}),
  });
  const service = new SupervisorService(bus, reconciler, VERSION);
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
      (next) => reconciler.reconfigure(next).then(() => logger.notice('config-reloaded', { config: args.config, pools: next.pools.map((p) => `${p.name}:${p.size}`).join(',') })),
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
  try {
    await service.start();
    if (stations) {
      const dispatcher = new Dispatcher(config, { libvirt, conntrack, clock, logger, newSecret: randomSecret }, reconciler);
      void openSignalPort(stations.address, stations.signalPort, stations.spicePort, dispatcher, reconciler, clock, logger, stop.signal);
    }
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
    bus.disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`<2>event=supervisor-crashed error=${JSON.stringify(String((e as Error)?.stack ?? e))}\n`);
    process.exit(1);
  },
);
