import { ChronyService } from '../adapters/chrony-service.js';
import { DnsmasqService } from '../adapters/dnsmasq-service.js';
import type { JournalLogger } from '../adapters/journal-logger.js';
import { StationHttpServer } from '../adapters/station-http-server.js';
import type { SystemClock } from '../adapters/system-clock.js';
import { TcpStationListener } from '../adapters/tcp-station-listener.js';
import { serveStation } from '../api/station/protocol.js';
import type { SessionActivity } from '../app/activity.js';
import type { Dispatcher } from '../app/dispatcher.js';
import type { Reconciler, SupervisorStatus } from '../app/reconciler.js';
import type { SupervisorMetrics } from '../app/supervisor-metrics.js';
import type { Config } from '../config/config.js';
import { asTabulaError } from '../domain/errors.js';
import { stationsFromLeases, type StationView } from '../domain/station-lan.js';
import type { Disposable } from '../ports/disposable.js';
import { renderClientConf } from '../render/station-config.js';

// The station LAN's part of the composition root: what main.ts starts on the
// station interface (signal port, HTTP endpoint, DHCP and NTP daemons).

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

export function openSignalPort(
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
export class StationLanServices {
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

/** What stations fetch over HTTP: client.conf and the slideshow, from the config in force. */
export function openStationEndpoint(reconciler: Reconciler, clock: SystemClock, logger: JournalLogger, stop: AbortSignal): Promise<void> {
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
