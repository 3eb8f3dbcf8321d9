import type { Lease, StationLanSpec } from '../domain/station-lan.js';

/**
 * A daemon serving the station LAN (DHCP, NTP), configured from the station
 * LAN spec as a whole and supervised: restarted with backoff if it dies.
 */
export interface LanService {
  /**
   * Makes the daemon serve `spec`. The new configuration is validated and
   * checked by the daemon's own parser before anything changes; then it
   * replaces the old one and the daemon is restarted (not when the
   * configuration is the same and the daemon runs).
   *
   * On failure nothing is left half-applied: a configuration refused by a
   * check throws `config-invalid` and the running daemon and its
   * configuration were never touched; a daemon that did not come up with the
   * new one throws `internal`, after the previous configuration has been put
   * back and its daemon restarted (the message says if even that failed).
   * A spec whose service is off (e.g. NTP with `ntp = false`) stops the daemon.
   */
  apply(spec: StationLanSpec): Promise<void>;
  /** Stops the daemon (SIGTERM, then SIGKILL after a grace period); its files stay. Idempotent. */
  stop(): Promise<void>;
  /** Whether the daemon is up now (false while stopped or waiting to be restarted). */
  readonly running: boolean;
}

/** The station LAN's DHCP server. */
export interface DhcpService extends LanService {
  /**
   * The leases the DHCP server holds, sorted by address; expired ones
   * included until the server drops them (compare `expiresAt` with the
   * clock). None before the first apply.
   */
  leases(): Promise<Lease[]>;
}

/** The station LAN's NTP server. */
export type NtpService = LanService;
