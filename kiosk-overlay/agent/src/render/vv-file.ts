import { StationError } from '../domain/errors.js';

export interface VvFileOptions {
  readonly host: string;
  readonly port: number;
  /** The Spice ticket; absent for a server without tickets (v0). */
  readonly password?: string;
  readonly title: string;
  readonly fullscreen: boolean;
  /** USB redirection on (the filter itself goes on the command line: see usb-filter.ts). */
  readonly usbRedirect: boolean;
}

/**
 * GKeyFile (how remote-viewer reads the file) strips blanks before a value and
 * turns `\\`, `\s`, `\t` into a backslash, a space, a tab: escape those so a
 * password or title arrives as written. A line break cannot be written at all
 * (`\n` would do, but no host, title or ticket of ours has one, so one is a bug).
 */
function value(field: string, v: string): string {
  const control = /[\u0000-\u0008\u000a-\u001f\u007f]/.exec(v);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(2, '0');
    throw new StationError('viewer-failed', `cannot write the viewer's .vv file: ${field} contains control character 0x${code}: ${JSON.stringify(v)}`);
  }
  return v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/^ /, '\\s');
}

/**
 * The connection file remote-viewer is started with. It keeps the ticket out
 * of the process list, and `delete-this-file=1` makes remote-viewer delete it
 * as soon as it has read it.
 *
 * Hotkeys: reading any .vv file makes remote-viewer 11 drop all its default
 * hotkeys (toggle full screen, zoom, secure attention, USB reset…) and set only
 * those the file names, so none is written (an empty one is refused with an
 * "Invalid hotkey" warning and changes nothing). The exception is
 * `release-cursor`: without it Ctrl+Alt still releases the keyboard and pointer
 * grab; empty, it is silently accepted and nothing releases them. Never write
 * `smartcard-insert`/`smartcard-remove`: remote-viewer 11 lists them as hotkeys
 * but has no such file property and crashes (double free) reading them.
 * Measured in test/integration/usb-filter.test.ts.
 */
export function renderVvFile(o: VvFileOptions): string {
  if (o.host === '') throw new StationError('viewer-failed', "cannot write the viewer's .vv file: the host is empty");
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) {
    throw new StationError('viewer-failed', `cannot write the viewer's .vv file: port ${o.port} is not 1..65535`);
  }
  const flag = (b: boolean): string => (b ? '1' : '0');
  return [
    '[virt-viewer]',
    'type=spice',
    `host=${value('host', o.host)}`,
    `port=${o.port}`,
    ...(o.password === undefined ? [] : [`password=${value('password', o.password)}`]),
    'delete-this-file=1',
    `fullscreen=${flag(o.fullscreen)}`,
    `title=${value('title', o.title)}`,
    `enable-usbredir=${flag(o.usbRedirect)}`,
    `enable-usb-autoshare=${flag(o.usbRedirect)}`,
    'release-cursor=',
    '',
  ].join('\n');
}
