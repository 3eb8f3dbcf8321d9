import { DEFAULT_USB_POLICY, parseUsbClasses, parseUsbDevices } from '../domain/usb-policy.js';
import { StationError } from '../domain/errors.js';
import { isIpv4 } from '../domain/ipv4.js';
import type { StationConfig } from './station-config.js';

/**
 * The station's settings files, `/etc/tabula/station.conf` and the card's
 * `tabula/station.conf`, and the server's `/client.conf`: `key=value` lines as
 * in the original stations' `/etc/client.conf` (whose keys they accept
 * unchanged), `#` comments. Parsing is pure: the caller reads the files
 * (config/station-sources.ts says which, in which order).
 */

type Setter = (value: string, key: string) => Partial<Mutable<StationConfig>>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const DEFAULTS: Omit<StationConfig, 'serverAddress' | 'serverOrigin' | 'stationName'> = {
  signalPort: 5905,
  spicePort: 5906,
  httpPort: 80,
  serverConfig: true,
  animationFolder: '/usr/share/tabula/animation',
  backgroundFolder: '/usr/share/tabula/slideshow',
  slideshowUrl: 'auto',
  slideshowIntervalS: 8,
  blankAfterS: 0,
  protocol: 'auto',
  pool: '',
  poolLabels: {},
  menuTimeoutS: 60,
  kioskUser: 'kiosk',
  display: ':0',
  activity: 'x11',
  inputReportS: 5,
  retryMinS: 1,
  retryMaxS: 30,
  usb: DEFAULT_USB_POLICY,
  viewer: 'remote-viewer',
  viewerFullscreen: true,
  screenProgram: '/usr/lib/tabula/station-agent/screen/screen.js',
  prompt: 'Touch the screen or press a key to start',
};

function bad(key: string, value: string, expected: string): StationError {
  return new StationError('config-invalid', `${key}=${value}: expected ${expected}`);
}

function int(min: number, max: number): (v: string, k: string) => number {
  return (v, k) => {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!(n >= min && n <= max)) throw bad(k, v, `a whole number from ${min} to ${max}`);
    return n;
  };
}
const port = int(1, 65535);

function bool(v: string, k: string): boolean {
  if (/^(1|yes|true|on)$/i.test(v)) return true;
  if (/^(0|no|false|off)$/i.test(v)) return false;
  throw bad(k, v, 'yes or no');
}

function oneOf<T extends string>(...allowed: T[]): (v: string, k: string) => T {
  return (v, k) => {
    if ((allowed as string[]).includes(v)) return v as T;
    throw bad(k, v, `one of ${allowed.join(', ')}`);
  };
}

function address(v: string, k: string): string {
  if (!isIpv4(v)) throw bad(k, v, 'an IPv4 address such as 169.254.24.1');
  return v;
}

const NAME = /^[A-Za-z0-9._-]{1,32}$/;
function name(v: string, k: string): string {
  if (!NAME.test(v)) throw bad(k, v, 'a name of 1-32 letters, digits, ".", "_" or "-"');
  return v;
}

function absolutePath(v: string, k: string): string {
  if (!v.startsWith('/')) throw bad(k, v, 'an absolute path');
  return v;
}

function url(v: string, k: string): string {
  if (v === '' || v === 'auto') return v;
  try {
    const u = new URL(v);
    if (u.protocol === 'http:' || u.protocol === 'https:') return v;
  } catch {
    // fall through to the error naming the key
  }
  throw bad(k, v, "an http:// URL, 'auto' or nothing");
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function poolLabels(v: string, k: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of list(v)) {
    const i = item.indexOf(':');
    const pool = i < 0 ? '' : item.slice(0, i).trim();
    const label = i < 0 ? '' : item.slice(i + 1).trim();
    if (!NAME.test(pool) || label === '') throw bad(k, item, 'pool:label pairs such as desktop:Windows 10,linux:Debian');
    labels[pool] = label;
  }
  return labels;
}

function text(v: string, k: string): string {
  if (v.length > 200) throw bad(k, v.slice(0, 20) + '…', 'at most 200 characters');
  return v;
}

const usb = (patch: Partial<Mutable<StationConfig['usb']>>) => (c: Partial<Mutable<StationConfig>>) => ({ ...(c.usb ?? DEFAULT_USB_POLICY), ...patch });

/** Every key the file may hold, the original ones first. */
const KEYS: Record<string, Setter> = {
  server_ip: (v, k) => ({ serverAddress: address(v, k) }),
  vdi_signal_port: (v, k) => ({ signalPort: port(v, k) }),
  vdi_spice_port: (v, k) => ({ spicePort: port(v, k) }),
  animation_folder: (v, k) => ({ animationFolder: absolutePath(v, k) }),
  background_folder: (v, k) => ({ backgroundFolder: absolutePath(v, k) }),
  http_port: (v, k) => ({ httpPort: port(v, k) }),
  server_config: (v, k) => ({ serverConfig: bool(v, k) }),
  slideshow_url: (v, k) => ({ slideshowUrl: url(v, k) }),
  slideshow_interval: (v, k) => ({ slideshowIntervalS: int(1, 3600)(v, k) }),
  blank_after: (v, k) => ({ blankAfterS: int(0, 86400)(v, k) }),
  station_name: (v, k) => ({ stationName: name(v, k) }),
  protocol: (v, k) => ({ protocol: ({ auto: 'auto', '1': 'v1', v1: 'v1', '0': 'v0', v0: 'v0' } as const)[oneOf('auto', '1', 'v1', '0', 'v0')(v, k)] }),
  pool: (v, k) => ({ pool: v === '' ? '' : name(v, k) }),
  pool_labels: (v, k) => ({ poolLabels: poolLabels(v, k) }),
  menu_timeout: (v, k) => ({ menuTimeoutS: int(5, 3600)(v, k) }),
  kiosk_user: (v, k) => ({ kioskUser: name(v, k) }),
  display: (v, k) => {
    if (!/^(:\d{1,3}(\.\d)?|wayland-\d{1,3})$/.test(v)) throw bad(k, v, 'an X display such as :0 or a Wayland socket such as wayland-0');
    return { display: v };
  },
  activity: (v, k) => ({ activity: oneOf('x11', 'evdev', 'none')(v, k) }),
  input_report_interval: (v, k) => ({ inputReportS: int(1, 60)(v, k) }),
  retry_min: (v, k) => ({ retryMinS: int(1, 600)(v, k) }),
  retry_max: (v, k) => ({ retryMaxS: int(1, 3600)(v, k) }),
  viewer: (v, k) => ({ viewer: v.includes('/') ? absolutePath(v, k) : name(v, k) }),
  viewer_fullscreen: (v, k) => ({ viewerFullscreen: bool(v, k) }),
  screen_program: (v, k) => ({ screenProgram: absolutePath(v, k) }),
  prompt: (v, k) => ({ prompt: text(v, k) }),
};
/** The USB keys patch one nested policy; they need what was set before. */
const USB_KEYS: Record<string, (v: string, k: string) => Partial<Mutable<StationConfig['usb']>>> = {
  usb_redirect: (v, k) => ({ redirect: bool(v, k) }),
  usb_allow: (v, k) => ({ allowClasses: parseUsbClasses(v, k) }),
  usb_deny: (v, k) => ({ denyClasses: parseUsbClasses(v, k) }),
  usb_allow_devices: (v, k) => ({ allowDevices: parseUsbDevices(v, k) }),
  usb_deny_devices: (v, k) => ({ denyDevices: parseUsbDevices(v, k) }),
};

/** The server's /client.conf also carries these, which a station file never needs. */
const SERVER_ONLY_KEYS = new Set(['pools']);

/** A settings file's text (station.conf, the card's, the server's client.conf). */
export interface ConfText {
  /** What the text is, for error messages (a path or a URL). */
  readonly origin: string;
  readonly text: string;
  /** Unknown keys: an error (a local file: a typo must not pass) or ignored (the server's file may be newer). */
  readonly strict: boolean;
}

/** Values from elsewhere than a file (the DHCP lease), under station.conf's key names. */
export interface ConfValues {
  readonly origin: string;
  readonly values: Readonly<Record<string, string>>;
}

export type ConfSource = ConfText | ConfValues;

/** `key=value` pairs of one file, in order, with their line; errors name the origin and line. */
export function parseKeyValues(src: ConfText): Map<string, { value: string; line: number }> {
  const out = new Map<string, { value: string; line: number }>();
  src.text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const where = `${src.origin} line ${i + 1}`;
    if (eq <= 0) throw new StationError('config-invalid', `${where}: expected key=value, got "${line.slice(0, 60)}"`);
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (/^"(.*)"$/.test(value)) value = value.slice(1, -1);
    if (!Object.hasOwn(KEYS, key) && !Object.hasOwn(USB_KEYS, key) && !SERVER_ONLY_KEYS.has(key)) {
      if (src.strict) throw new StationError('config-invalid', `${where}: unknown key "${key}"`);
      return;
    }
    out.set(key, { value, line: i + 1 });
  });
  return out;
}

/**
 * The station's config from its sources, later ones winning (see
 * station-sources.ts for their order), with `hostname` as the default station
 * name. Every value is checked; the first bad one is named. No source naming
 * the server is no error here: it is the normal state before the first DHCP
 * lease (`requireServer` says so where a server is needed).
 */
export function buildStationConfig(sources: readonly ConfSource[], hostname: string): StationConfig {
  const merged = new Map<string, { value: string; origin: string }>();
  for (const src of sources) {
    if ('values' in src) for (const [k, value] of Object.entries(src.values)) merged.set(k, { value, origin: src.origin });
    else for (const [k, v] of parseKeyValues(src)) merged.set(k, { value: v.value, origin: `${src.origin} line ${v.line}` });
  }

  let cfg: Partial<Mutable<StationConfig>> = { ...DEFAULTS, stationName: NAME.test(hostname) ? hostname : 'station' };
  for (const [key, { value, origin }] of merged) {
    try {
      if (SERVER_ONLY_KEYS.has(key)) continue;
      const usbSetter = USB_KEYS[key];
      cfg = usbSetter ? { ...cfg, usb: usb(usbSetter(value, key))(cfg) } : { ...cfg, ...KEYS[key]!(value, key) };
    } catch (e) {
      if (e instanceof StationError) throw new StationError('config-invalid', `${origin}: ${e.message}`);
      throw e;
    }
  }
  cfg.serverOrigin = merged.get('server_ip')?.origin ?? (sources.map((s) => s.origin).join('; ') || 'no config');
  if (cfg.activity === 'x11' && !cfg.display!.startsWith(':')) {
    throw new StationError('config-invalid', `activity=x11 needs an X display, not display=${cfg.display} (use evdev on Wayland)`);
  }
  if (cfg.retryMinS! > cfg.retryMaxS!) throw new StationError('config-invalid', `retry_min=${cfg.retryMinS} is above retry_max=${cfg.retryMaxS}`);
  const done = cfg as StationConfig;
  return Object.freeze({ ...done, usb: Object.freeze({ ...done.usb }), poolLabels: Object.freeze({ ...done.poolLabels }) });
}

/** The server's address, or a `server-unknown` error naming every source looked at. */
export function requireServer(cfg: StationConfig): string {
  if (cfg.serverAddress !== undefined) return cfg.serverAddress;
  throw serverUnknown(cfg);
}

export function serverUnknown(cfg: StationConfig): StationError {
  return new StationError('server-unknown', `no server known: no DHCP lease names one and server_ip is not set (looked at: ${cfg.serverOrigin})`);
}

/** The URL the slideshow list is fetched from ('' for none). */
export function slideshowListUrl(cfg: StationConfig): string {
  if (cfg.slideshowUrl !== 'auto') return cfg.slideshowUrl;
  if (cfg.serverAddress === undefined) return '';
  return `http://${cfg.serverAddress}${cfg.httpPort === 80 ? '' : `:${cfg.httpPort}`}/slideshow/`;
}

/** The server's client.conf, or '' when the station does not read it (or knows no server yet). */
export function serverConfigUrl(cfg: StationConfig): string {
  if (!cfg.serverConfig || cfg.serverAddress === undefined) return '';
  return `http://${cfg.serverAddress}${cfg.httpPort === 80 ? '' : `:${cfg.httpPort}`}/client.conf`;
}
