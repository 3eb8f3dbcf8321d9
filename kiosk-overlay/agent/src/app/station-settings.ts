import { serverConfigUrl } from '../config/station-conf.js';
import type { StationConfig } from '../config/station-config.js';
import { settingsFrom, type Settings } from '../config/station-sources.js';
import type { Logger } from '../ports/logger.js';
import type { SettingsSource } from '../ports/settings-source.js';

/**
 * The config the agent works with, from every source in its order
 * (config/station-sources.ts), re-read before each visit: the DHCP lease as it
 * is now, the server's client.conf (staff change the server's side without
 * touching the kiosks), the card's and the image's files. A server that does
 * not answer leaves the station's own sources in charge; sources that turned
 * bad are reported and the last good config kept.
 */
export class StationSettings {
  #current: StationConfig;
  /** The lease's notes last logged: each is logged when it appears, not at every visit. */
  #notes: readonly string[] = [];

  private constructor(
    private readonly source: SettingsSource,
    private readonly logger: Logger,
    first: Settings,
  ) {
    this.#current = first.config;
    this.#logNotes(first.notes);
  }

  /** The station's own sources must be good: a station that cannot start says why at once. No server yet is fine. */
  static async load(source: SettingsSource, logger: Logger): Promise<StationSettings> {
    const s = new StationSettings(source, logger, settingsFrom(await source.local(), source.hostname()));
    await s.refresh();
    return s;
  }

  get current(): StationConfig {
    return this.#current;
  }

  async refresh(): Promise<void> {
    try {
      const read = await this.source.local();
      const own = settingsFrom(read, this.source.hostname());
      const url = serverConfigUrl(own.config);
      const text = url === '' ? undefined : await this.source.server(url);
      const next = text === undefined ? own : settingsFrom(read, this.source.hostname(), { url, text });
      this.#logNotes(next.notes);
      const before = this.#current;
      this.#current = next.config;
      if (next.config.serverAddress !== before.serverAddress) {
        this.logger.notice('server-changed', { server: next.config.serverAddress, was: before.serverAddress, origin: next.config.serverOrigin });
      }
    } catch (e) {
      this.logger.err('config-refused', { error: e instanceof Error ? e.message : String(e) });
    }
  }

  #logNotes(notes: readonly string[]): void {
    for (const note of notes) if (!this.#notes.includes(note)) this.logger.warning('lease-problem', { detail: note });
    this.#notes = notes;
  }
}
