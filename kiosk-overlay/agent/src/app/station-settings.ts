import { buildStationConfig, serverConfigUrl } from '../config/station-conf.js';
import type { StationConfig } from '../config/station-config.js';
import type { Logger } from '../ports/logger.js';
import type { SettingsSource } from '../ports/settings-source.js';

/**
 * The config the agent works with: the local file over the server's
 * client.conf, re-read before each visit so staff can change the server's
 * side without touching the kiosks. A server that does not answer leaves the
 * local file alone in charge; a local file that turned bad is reported and
 * the last good config kept.
 */
export class StationSettings {
  #current: StationConfig;

  private constructor(
    private readonly source: SettingsSource,
    private readonly logger: Logger,
    first: StationConfig,
  ) {
    this.#current = first;
  }

  /** The local file alone must be good: a station that cannot start says why at once. */
  static async load(source: SettingsSource, logger: Logger): Promise<StationSettings> {
    const s = new StationSettings(source, logger, buildStationConfig([{ ...(await source.local()), strict: true }], source.hostname()));
    await s.refresh();
    return s;
  }

  get current(): StationConfig {
    return this.#current;
  }

  async refresh(): Promise<void> {
    try {
      const local = { ...(await this.source.local()), strict: true };
      const base = buildStationConfig([local], this.source.hostname());
      const url = serverConfigUrl(base);
      const server = url === '' ? undefined : await this.source.server(url);
      this.#current = server === undefined ? base : buildStationConfig([{ origin: url, text: server, strict: false }, local], this.source.hostname());
    } catch (e) {
      this.logger.err('config-refused', { error: e instanceof Error ? e.message : String(e) });
    }
  }
}
