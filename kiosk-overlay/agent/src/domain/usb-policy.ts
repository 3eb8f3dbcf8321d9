import { StationError } from './errors.js';

/**
 * Which USB devices a session may take over. A kiosk must never accept an
 * injected keyboard, so HID is denied unless a device is named explicitly.
 */
export const USB_CLASSES = {
  audio: 0x01,
  comm: 0x02,
  hid: 0x03,
  physical: 0x05,
  imaging: 0x06,
  printer: 0x07,
  'mass-storage': 0x08,
  hub: 0x09,
  'cdc-data': 0x0a,
  'smart-card': 0x0b,
  video: 0x0e,
  'audio-video': 0x10,
  wireless: 0xe0,
  misc: 0xef,
  vendor: 0xff,
} as const;

export type UsbClassName = keyof typeof USB_CLASSES;

/** One device by vendor and product id, e.g. `04a9:2220`. */
export interface UsbDeviceId {
  readonly vendor: number;
  readonly product: number;
}

export interface UsbPolicy {
  /** Redirection at all (false: the viewer is started without it). */
  readonly redirect: boolean;
  /** Classes redirected automatically when plugged in during a session, and on connect. */
  readonly allowClasses: readonly UsbClassName[];
  /** Classes refused even inside a composite device (a keyboard hidden in a "storage" stick). */
  readonly denyClasses: readonly UsbClassName[];
  /** Devices allowed whatever their class (e.g. one barcode scanner that is a keyboard). */
  readonly allowDevices: readonly UsbDeviceId[];
  /** Devices refused whatever their class. */
  readonly denyDevices: readonly UsbDeviceId[];
}

export const DEFAULT_USB_POLICY: UsbPolicy = Object.freeze<UsbPolicy>({
  redirect: true,
  allowClasses: ['mass-storage', 'imaging', 'printer', 'video'],
  denyClasses: ['hid'],
  allowDevices: [],
  denyDevices: [],
});

/** Comma-separated entries; blanks around them and empty ones (a trailing comma) are ignored. */
function entries(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A config value such as `mass-storage, printer` (names of USB_CLASSES; empty: none). */
export function parseUsbClasses(value: string, key: string): UsbClassName[] {
  const names: UsbClassName[] = [];
  for (const entry of entries(value)) {
    const name = entry.toLowerCase();
    if (!Object.hasOwn(USB_CLASSES, name)) {
      throw new StationError(
        'config-invalid',
        `${key}: unknown USB class "${entry}" in "${value}"; valid: ${Object.keys(USB_CLASSES).join(', ')}`,
      );
    }
    if (!names.includes(name as UsbClassName)) names.push(name as UsbClassName);
  }
  return names;
}

const DEVICE_ID = /^([0-9a-f]{4}):([0-9a-f]{4})$/i;

/** A config value such as `04a9:2220, 05e0:1200`: vendor:product in hex, as `lsusb` shows them (empty: none). */
export function parseUsbDevices(value: string, key: string): UsbDeviceId[] {
  const devices: UsbDeviceId[] = [];
  for (const entry of entries(value)) {
    const m = DEVICE_ID.exec(entry);
    if (!m) {
      throw new StationError('config-invalid', `${key}: "${entry}" in "${value}" is not a USB device id (vvvv:pppp, four hex digits each, as lsusb shows it)`);
    }
    const device = { vendor: parseInt(m[1] ?? '', 16), product: parseInt(m[2] ?? '', 16) };
    if (!devices.some((d) => d.vendor === device.vendor && d.product === device.product)) devices.push(device);
  }
  return devices;
}
