import { StationError } from '../domain/errors.js';
import { USB_CLASSES, type UsbClassName, type UsbDeviceId, type UsbPolicy } from '../domain/usb-policy.js';

/** Refuses whatever no earlier rule allowed: always the last rule. */
export const DENY_ALL_RULE = '-1,-1,-1,-1,0';

const ANY = '-1';

function hex(n: number, digits: number): string {
  return `0x${n.toString(16).padStart(digits, '0')}`;
}

function classCode(name: UsbClassName): number {
  const code = (USB_CLASSES as Readonly<Record<string, number>>)[name];
  if (code === undefined) {
    throw new StationError('config-invalid', `USB policy names an unknown class "${name}"; valid: ${Object.keys(USB_CLASSES).join(', ')}`);
  }
  return code;
}

function deviceKey(d: UsbDeviceId): string {
  for (const [what, n] of [['vendor', d.vendor], ['product', d.product]] as const) {
    if (!Number.isInteger(n) || n < 0 || n > 0xffff) {
      throw new StationError('config-invalid', `USB policy names a device with ${what} id ${n}: ids are 0..0xffff`);
    }
  }
  return `${hex(d.vendor, 4)},${hex(d.product, 4)}`;
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/**
 * The USB policy as spice-gtk's usbredir filter: rules
 * `class,vendor,product,version,allow` joined by `|`, `-1` matching anything.
 *
 * How usbredir applies it decides the order: the device class (unless it is
 * 0x00 "per interface" or 0xef) and then every interface is checked on its
 * own, each against the first rule that matches it, and the device is refused
 * as soon as one check is refused or matches nothing. So:
 *
 * 1. devices refused by id, whatever they contain;
 * 2. devices allowed by id: their rule matches every interface first, so a
 *    named barcode scanner that is a keyboard gets through;
 * 3. refused classes before allowed ones: a "storage" stick with a hidden
 *    keyboard interface matches the HID deny on that interface;
 * 4. allowed classes;
 * 5. everything else refused (also any interface of a class not named, so a
 *    printer with an extra vendor-specific interface needs `vendor` allowed).
 *
 * A class or device in both lists is only denied (its allow rule could never
 * match), and repeats are dropped, to keep the string short in `ps`.
 *
 * Limits, so nobody counts on more: spice-gtk checks devices without
 * usbredir's "dont_skip_non_boot_hid" flag, so in a device with several
 * interfaces a HID interface of subclass 0 / protocol 0 (not a boot keyboard
 * or mouse) is skipped, not denied. And the filter only steers automatic
 * redirection; the viewer's manual USB dialog ignores it. The server's own
 * filter (libvirt `<redirfilter>`) is what finally holds.
 */
export function renderUsbFilter(policy: UsbPolicy): string {
  const denyDevices = unique(policy.denyDevices.map(deviceKey));
  const allowDevices = unique(policy.allowDevices.map(deviceKey)).filter((d) => !denyDevices.includes(d));
  const denyClasses = unique(policy.denyClasses.map(classCode));
  const allowClasses = unique(policy.allowClasses.map(classCode)).filter((c) => !denyClasses.includes(c));
  return [
    ...denyDevices.map((d) => `${ANY},${d},${ANY},0`),
    ...allowDevices.map((d) => `${ANY},${d},${ANY},1`),
    ...denyClasses.map((c) => `${hex(c, 2)},${ANY},${ANY},${ANY},0`),
    ...allowClasses.map((c) => `${hex(c, 2)},${ANY},${ANY},${ANY},1`),
    DENY_ALL_RULE,
  ].join('|');
}

/**
 * remote-viewer's options for the policy. The same filter serves devices
 * plugged in during the session (auto-redirect) and those already plugged in
 * when it connects (redirect-on-connect); without redirection the viewer
 * gets no USB channel at all.
 */
export function viewerUsbArgs(policy: UsbPolicy): string[] {
  if (!policy.redirect) return ['--spice-disable-usbredir'];
  const filter = renderUsbFilter(policy);
  return [`--spice-usbredir-auto-redirect-filter=${filter}`, `--spice-usbredir-redirect-on-connect=${filter}`];
}


