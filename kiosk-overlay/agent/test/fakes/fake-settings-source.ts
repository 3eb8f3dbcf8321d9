import { StationError } from '../../src/domain/errors.js';
import type { StationPaths, StationSourcesRead } from '../../src/domain/station-sources.js';
import type { SettingsSource } from '../../src/ports/settings-source.js';

export const PATHS: StationPaths = { config: '/etc/tabula/station.conf', card: '/run/live/medium/tabula/station.conf', leaseDir: '/run/systemd/netif/leases' };

/**
 * The station's sources as plain fields the test changes between reads: the
 * leases by interface index, the card's file (undefined: none), the image's
 * file (undefined: unreadable), and the client.conf each server URL answers.
 */
export class FakeSettingsSource implements SettingsSource {
  leases: Record<number, string> = {};
  card: string | undefined = undefined;
  config: string | undefined = '# nothing set\n';
  /** URL → client.conf text; a URL not here does not answer. */
  served: Record<string, string> = {};
  /** Every URL asked for, in order. */
  readonly asked: string[] = [];

  local(): Promise<StationSourcesRead> {
    if (this.config === undefined) return Promise.reject(new StationError('config-unreadable', `${PATHS.config}: ENOENT`));
    const leases = Object.entries(this.leases)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([index, text]) => ({ origin: `${PATHS.leaseDir}/${index}`, text }));
    return Promise.resolve({ paths: PATHS, leases, card: this.card, config: this.config });
  }

  server(url: string): Promise<string | undefined> {
    this.asked.push(url);
    return Promise.resolve(this.served[url]);
  }

  hostname(): string {
    return 'kiosk-3';
  }
}
