import t from 'tap';
import { StationError } from '../../src/domain/errors.js';
import { DEFAULT_USB_POLICY, USB_CLASSES, type UsbPolicy } from '../../src/domain/usb-policy.js';
import { parseUsbClasses, parseUsbDevices } from '../../src/domain/usb-policy.js';
import { DENY_ALL_RULE, renderUsbFilter, viewerUsbArgs } from '../../src/render/usb-filter.js';

function policy(over: Partial<UsbPolicy> = {}): UsbPolicy {
  return { ...DEFAULT_USB_POLICY, ...over };
}

interface Rule {
  cls: number;
  vendor: number;
  product: number;
  version: number;
  allow: boolean;
}

/** The filter read back the way usbredir does (strtol base 0: `0x..` hex or decimal). */
function rules(filter: string): Rule[] {
  return filter.split('|').map((r) => {
    const f = r.split(',');
    if (f.length !== 5) throw new Error(`rule "${r}" has ${f.length} fields`);
    const n = f.map((x, i) => {
      const ok = i === 4 ? /^[01]$/ : /^(-1|0x[0-9a-f]+)$/;
      if (!ok.test(x)) throw new Error(`field ${i} "${x}" of "${r}" is ${i === 4 ? 'neither 0 nor 1' : 'neither 0x.. hex nor -1'}`);
      return Number(x);
    });
    return { cls: n[0]!, vendor: n[1]!, product: n[2]!, version: n[3]!, allow: n[4] === 1 };
  });
}

/**
 * usbredirfilter_check as spice-gtk calls it (flags 0): the device class
 * unless 0x00/0xef, then each interface, each against its first matching rule;
 * refused on the first deny or on a pass that matches nothing.
 */
function allowed(filter: string, dev: { vendor: number; product: number; cls?: number; interfaces: number[] }): boolean {
  const rs = rules(filter);
  const pass = (cls: number): boolean => {
    const r = rs.find((x) => (x.cls === -1 || x.cls === cls) && (x.vendor === -1 || x.vendor === dev.vendor) && (x.product === -1 || x.product === dev.product));
    return r?.allow ?? false;
  };
  const cls = dev.cls ?? 0;
  if (cls !== 0x00 && cls !== 0xef && !pass(cls)) return false;
  return dev.interfaces.every(pass);
}

const STICK = { vendor: 0x0781, product: 0x5567, interfaces: [USB_CLASSES['mass-storage']] };
const BAD_STICK = { vendor: 0x1234, product: 0x0001, interfaces: [USB_CLASSES['mass-storage'], USB_CLASSES.hid] };
const KEYBOARD = { vendor: 0x046d, product: 0xc31c, interfaces: [USB_CLASSES.hid] };
const SCANNER = { vendor: 0x05e0, product: 0x1200, interfaces: [USB_CLASSES.hid] };

t.test('the default policy: exact string', async (t) => {
  t.equal(renderUsbFilter(DEFAULT_USB_POLICY), '0x03,-1,-1,-1,0|0x08,-1,-1,-1,1|0x06,-1,-1,-1,1|0x07,-1,-1,-1,1|0x0e,-1,-1,-1,1|-1,-1,-1,-1,0');
});

t.test('order: device denies, device allows, class denies, class allows, then deny all', async (t) => {
  const f = renderUsbFilter(
    policy({
      allowClasses: ['printer'],
      denyClasses: ['hid', 'wireless'],
      allowDevices: [{ vendor: 0x05e0, product: 0x1200 }],
      denyDevices: [{ vendor: 0x0781, product: 0x5567 }, { vendor: 0xabcd, product: 0x00ef }],
    }),
  );
  t.equal(
    f,
    [
      '-1,0x0781,0x5567,-1,0',
      '-1,0xabcd,0x00ef,-1,0',
      '-1,0x05e0,0x1200,-1,1',
      '0x03,-1,-1,-1,0',
      '0xe0,-1,-1,-1,0',
      '0x07,-1,-1,-1,1',
      DENY_ALL_RULE,
    ].join('|'),
  );
  t.equal(rules(f).at(-1)?.allow, false, 'the last rule denies');
});

t.test('what the default policy lets through', async (t) => {
  const f = renderUsbFilter(DEFAULT_USB_POLICY);
  t.ok(allowed(f, STICK), 'a storage stick');
  t.notOk(allowed(f, BAD_STICK), 'a storage stick with a keyboard interface (composite)');
  t.notOk(allowed(f, KEYBOARD), 'a keyboard');
  t.notOk(allowed(f, { vendor: 1, product: 2, interfaces: [USB_CLASSES.audio] }), 'a class not named');
  t.notOk(allowed(f, { vendor: 1, product: 2, interfaces: [USB_CLASSES.printer, USB_CLASSES.vendor] }), 'a printer with a vendor-specific interface');
  t.notOk(allowed(f, { vendor: 1, product: 2, cls: USB_CLASSES.hid, interfaces: [USB_CLASSES['mass-storage']] }), 'a HID device class');
});

t.test('devices named by id win over classes, denies over allows', async (t) => {
  const f = renderUsbFilter(policy({ allowDevices: [{ vendor: 0x05e0, product: 0x1200 }], denyDevices: [{ vendor: 0x0781, product: 0x5567 }] }));
  t.ok(allowed(f, SCANNER), 'the named barcode scanner, a keyboard');
  t.notOk(allowed(f, KEYBOARD), 'other keyboards');
  t.notOk(allowed(f, STICK), 'the refused stick, though storage is allowed');
  const both = renderUsbFilter(policy({ allowDevices: [{ vendor: 0x05e0, product: 0x1200 }], denyDevices: [{ vendor: 0x05e0, product: 0x1200 }] }));
  t.notOk(allowed(both, SCANNER), 'a device in both lists is refused');
  t.equal(both.split('|').filter((r) => r.includes('0x05e0')).length, 1, '…and only its deny is written');
});

t.test('a class both allowed and denied is denied, once; repeats are dropped', async (t) => {
  const f = renderUsbFilter(policy({ allowClasses: ['hid', 'printer', 'printer'], denyClasses: ['hid', 'hid'] }));
  t.equal(f, '0x03,-1,-1,-1,0|0x07,-1,-1,-1,1|-1,-1,-1,-1,0');
});

t.test('nothing allowed: only the deny-all rule', async (t) => {
  t.equal(renderUsbFilter(policy({ allowClasses: [], denyClasses: [] })), DENY_ALL_RULE);
});

t.test('every class renders as two-digit hex', async (t) => {
  const names = Object.keys(USB_CLASSES) as (keyof typeof USB_CLASSES)[];
  const f = renderUsbFilter(policy({ allowClasses: names, denyClasses: [] }));
  t.same(
    rules(f).slice(0, -1).map((r) => r.cls),
    names.map((n) => USB_CLASSES[n]),
  );
  t.match(f, /^(0x[0-9a-f]{2},-1,-1,-1,1\|)+-1,-1,-1,-1,0$/);
});

t.test('an impossible device id is refused with a clear error', async (t) => {
  for (const bad of [{ vendor: 0x10000, product: 1 }, { vendor: 1, product: -1 }, { vendor: 1.5, product: 1 }]) {
    t.throws(() => renderUsbFilter(policy({ allowDevices: [bad] })), { name: 'StationError', code: 'config-invalid', message: /id .*0\.\.0xffff/ });
  }
  t.throws(() => renderUsbFilter(policy({ allowClasses: ['keyboard' as never] })), { code: 'config-invalid', message: /unknown class "keyboard".*valid: audio/ });
});

t.test('viewer options', async (t) => {
  const f = renderUsbFilter(DEFAULT_USB_POLICY);
  t.same(viewerUsbArgs(DEFAULT_USB_POLICY), [`--spice-usbredir-auto-redirect-filter=${f}`, `--spice-usbredir-redirect-on-connect=${f}`]);
  t.same(viewerUsbArgs(policy({ redirect: false })), ['--spice-disable-usbredir']);
});

t.test('parseUsbClasses', async (t) => {
  t.same(parseUsbClasses('mass-storage,printer', 'usb_allow'), ['mass-storage', 'printer']);
  t.same(parseUsbClasses(' Mass-Storage , video,, ', 'usb_allow'), ['mass-storage', 'video'], 'blanks, case and empty entries');
  t.same(parseUsbClasses('hid,hid', 'usb_deny'), ['hid'], 'repeats dropped');
  t.same(parseUsbClasses('', 'usb_allow'), [], 'empty: none');
  const e = t.throws(() => parseUsbClasses('printer,keyboard', 'usb_allow_classes')) as StationError;
  t.equal(e.name, 'StationError');
  t.equal(e.code, 'config-invalid');
  t.match(e.message, 'usb_allow_classes');
  t.match(e.message, '"keyboard"');
  t.match(e.message, '"printer,keyboard"');
  t.match(e.message, Object.keys(USB_CLASSES).join(', '));
  t.throws(() => parseUsbClasses('0x08', 'k'), { message: /unknown USB class "0x08"/ }, 'numbers are not names');
  t.throws(() => parseUsbClasses('constructor', 'k'), { message: /unknown USB class/ }, 'no inherited keys');
});

t.test('parseUsbDevices', async (t) => {
  t.same(parseUsbDevices('04a9:2220, 05E0:1200', 'usb_allow_devices'), [
    { vendor: 0x04a9, product: 0x2220 },
    { vendor: 0x05e0, product: 0x1200 },
  ]);
  t.same(parseUsbDevices('04a9:2220,04A9:2220', 'k'), [{ vendor: 0x04a9, product: 0x2220 }], 'repeats dropped');
  t.same(parseUsbDevices(' ', 'k'), [], 'empty: none');
  for (const bad of ['4a9:2220', '04a9-2220', '04a9:2220:1', '0x04a9:2220', 'ghij:0000', '04a9:22200']) {
    const e = t.throws(() => parseUsbDevices(`0001:0002,${bad}`, 'usb_deny_devices'), `"${bad}"`) as StationError;
    t.equal(e.code, 'config-invalid');
    t.match(e.message, 'usb_deny_devices');
    t.match(e.message, `"${bad}"`);
    t.match(e.message, 'vvvv:pppp');
  }
});
