import type { StationSourcesRead } from '../domain/station-sources.js';

/** Where the station's settings come from: its own files and DHCP leases, and the server's client.conf. */
export interface SettingsSource {
  /** The station's files and leases as they are now. Rejects with `config-unreadable` (an absent card file or lease is no error). */
  local(): Promise<StationSourcesRead>;
  /** The server's file at `url`, or undefined when the server does not answer. */
  server(url: string): Promise<string | undefined>;
  /** The host name, the default station name. */
  hostname(): string;
}
