import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listenAdminHttp, listenAdminHttps, type AdminSite, type Listening } from '../adapters/admin/admin-http-server.js';
import { FileCredentialStore } from '../adapters/admin/private-files.js';
import { ScryptPasswordHasher } from '../adapters/admin/scrypt-password.js';
import { ensureCertificate } from '../adapters/admin/self-signed-certificate.js';
import { loadAssets } from '../adapters/admin/static-assets.js';
import type { JournalLogger } from '../adapters/journal-logger.js';
import { NftAdminGuard } from '../adapters/nft-admin-guard.js';
import { randomSecret } from '../adapters/random-secret.js';
import type { SystemClock } from '../adapters/system-clock.js';
import type { AdminApi } from '../api/http/admin/admin-api.js';
import { AdminSiteApi } from '../api/http/admin/admin-site.js';
import { reachedOnStationLan } from '../api/http/admin/station-lan.js';
import { PoolHistory } from '../app/pool-history.js';
import { HistoryKeeper } from '../app/history-keeper.js';
import { FileHistoryStore } from '../adapters/file-history-store.js';
import type { SupervisorMetrics } from '../app/supervisor-metrics.js';
import type { Config } from '../config/config.js';
import { POOL_SIZE_MAX } from '../config/schema.js';
import { asTabulaError } from '../domain/errors.js';
import type { Disposable } from '../ports/disposable.js';
import { renderSessionsCsv } from '../render/session-csv.js';

// The admin web page's part of the composition root (docs/admin-web.md).

/** How often idle event streams get a keep-alive, and ended logins lose theirs. */
const HEARTBEAT_MS = 25_000;
/** The page's files, copied beside the compiled code at build time. */
const ASSETS_DIR = fileURLToPath(new URL('../admin-web/', import.meta.url));

export interface AdminWebDeps {
  readonly clock: SystemClock;
  readonly logger: JournalLogger;
  readonly metrics: SupervisorMetrics;
  /** The config in force (a reload may change the station LAN's address). */
  readonly config: () => Config;
}

export interface AdminWeb {
  /** Stops serving and opens the admin ports on the station LAN again (nothing listens there then). */
  stop(): Promise<void>;
}

/**
 * Serves the admin page when the config has `[admin]`: the ports shut on the
 * station interface first, then the certificate (made on the first start),
 * then HTTPS (and HTTP on loopback if asked). A failure is logged and leaves
 * the supervisor serving the kiosks without the page.
 */
export async function startAdminWeb(config: Config, api: AdminApi, deps: AdminWebDeps): Promise<AdminWeb | undefined> {
  const admin = config.admin;
  if (!admin) return undefined;
  const { clock, logger } = deps;
  const history = new PoolHistory(clock);
  // The plots outlive restarts: taken up before the first status, saved every few minutes and at stop.
  const keeper = new HistoryKeeper(history, { store: new FileHistoryStore(join(admin.dir, 'history.json')), clock, logger });
  await keeper.load(new Set(config.pools.map((p) => p.name)));
  const held: Disposable[] = [api.onStatus((s) => history.observe(s)), deps.metrics.watchHandoffs((pool, ms) => history.handedOut(pool, ms))];
  history.observe(api.status());
  const site = new AdminSiteApi({
    api: { ...api, history: () => history.snapshot() },
    clock,
    logger,
    newSecret: randomSecret,
    hasher: new ScryptPasswordHasher(),
    store: new FileCredentialStore(admin.dir),
    renderCsv: renderSessionsCsv,
    maxPoolSize: POOL_SIZE_MAX,
    idleMs: admin.sessionIdleMs,
  });
  held.push(site.start());
  const stations = config.stations;
  const guard = stations ? new NftAdminGuard(`${stations.nftTable}_admin`) : undefined;
  const stopping = new AbortController();
  const stop = async () => {
    stopping.abort();
    for (const h of held.splice(0)) h.dispose();
    await keeper.save();
    await guard?.remove().catch((e: unknown) => logger.warning('admin-guard-remove-failed', { error: asTabulaError(e).message }));
  };
  try {
    const ports = [admin.httpsPort, ...(admin.httpLoopbackPort === undefined ? [] : [admin.httpLoopbackPort])];
    // Shut before anything listens: there is never a moment a station could reach the page.
    if (guard && stations) await guard.apply(stations.interface, ports);
    const assets = await loadAssets(ASSETS_DIR);
    const cert = await ensureCertificate(admin.dir, { dns: [hostname(), 'localhost'], ips: ['127.0.0.1', ...admin.listen.filter((a) => a !== '0.0.0.0' && a !== '::')] });
    logger.notice('admin-certificate', { created: cert.created, fingerprint: cert.fingerprint });
    const seen = new Set<string>();
    const adminSite: AdminSite = {
      handle: (req) => site.handle(req),
      assets,
      refuses: (local) => reachedOnStationLan(local, deps.config().stations?.address),
      refused: (local, remote) => {
        // Once per client: a station retrying must not flood the journal.
        if (seen.size < 1024 && !seen.has(remote)) logger.warning('admin-connection-refused', { local, remote, why: 'station LAN' });
        seen.add(remote);
      },
    };
    const listening = (s: Listening, scheme: string, address: string) => {
      held.push(s);
      logger.notice('admin-listening', { scheme, address, port: s.port });
    };
    for (const host of admin.listen.length === 0 ? [undefined] : admin.listen) listening(await listenAdminHttps(host, admin.httpsPort, cert, adminSite), 'https', host ?? '*');
    if (admin.httpLoopbackPort !== undefined) listening(await listenAdminHttp('127.0.0.1', admin.httpLoopbackPort, adminSite), 'http', '127.0.0.1');
    void heartbeat(site, clock, stopping.signal);
    void keeper.run(stopping.signal);
    return { stop };
  } catch (e) {
    const err = asTabulaError(e);
    logger.err('admin-unavailable', { code: err.code, error: err.message });
    await stop();
    return undefined;
  }
}

async function heartbeat(site: AdminSiteApi, clock: SystemClock, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    await clock.sleep(HEARTBEAT_MS, stop);
    if (!stop.aborted) site.heartbeat();
  }
}
