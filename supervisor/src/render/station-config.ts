/**
 * What a kiosk fetches from the server's station endpoint (GET /client.conf):
 * the original stations' client.conf keys, so a station configured the old
 * way and one configured by DHCP read the same file, plus Tabula's own.
 */
export interface StationConfigView {
  readonly serverAddress: string;
  readonly signalPort: number;
  readonly spicePort: number;
  /** Where the slideshow's images are listed (JSON) and served. */
  readonly slideshowUrl: string;
  /** The pools a station may choose (the OS menu), in config order. */
  readonly pools: readonly string[];
}

export function renderClientConf(v: StationConfigView): string {
  const lines = [
    '# Served by the Tabula supervisor; a station reads it at boot and before each session.',
    `server_ip=${v.serverAddress}`,
    `vdi_signal_port=${v.signalPort}`,
    `vdi_spice_port=${v.spicePort}`,
    // The original stations kept their pictures on the card; Tabula's fetch them from here.
    `slideshow_url=${v.slideshowUrl}`,
    'protocol=1',
    `pools=${v.pools.join(',')}`,
  ];
  return lines.join('\n') + '\n';
}

/** Image files a station shows in its slideshow; anything else in the folder is not served. */
export const SLIDESHOW_TYPES: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
};

/** A file name a station may ask for: one plain name, no path, not hidden, of an image type. */
export function slideshowType(name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) return undefined;
  const dot = name.lastIndexOf('.');
  return dot < 0 ? undefined : SLIDESHOW_TYPES[name.slice(dot).toLowerCase()];
}
