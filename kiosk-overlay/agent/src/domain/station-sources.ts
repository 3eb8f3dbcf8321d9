/**
 * Where a station's settings come from (besides the server's client.conf,
 * fetched over HTTP once the server is known) and what they held when read.
 * Plain data: adapters read it, config/ turns it into a StationConfig.
 */
export interface StationPaths {
  /** The image's own file, in the read-only squashfs: the last word. */
  readonly config: string;
  /** The file on the card's boot partition: a site's settings, written on any PC. */
  readonly card: string;
  /** Where systemd-networkd keeps its DHCP leases, one file per interface index. */
  readonly leaseDir: string;
}

export interface StationSourcesRead {
  readonly paths: StationPaths;
  /** The text of each lease file, by interface index (lowest first); none before the first lease. */
  readonly leases: readonly { readonly origin: string; readonly text: string }[];
  /** The card's file; undefined when the card has none. */
  readonly card: string | undefined;
  readonly config: string;
}
