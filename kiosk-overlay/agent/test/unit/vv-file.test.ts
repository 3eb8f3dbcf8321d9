import t from 'tap';
import { renderVvFile, type VvFileOptions } from '../../src/render/vv-file.js';

function opts(over: Partial<VvFileOptions> = {}): VvFileOptions {
  return { host: '169.254.24.1', port: 5906, password: 'Tick3t', title: 'Tabula', fullscreen: true, usbRedirect: true, ...over };
}

/** The file as GKeyFile reads it: `key=value` lines of one group, blanks before a value dropped, escapes undone. */
function read(text: string): Map<string, string> {
  const lines = text.split('\n');
  const group = lines.shift();
  if (group !== '[virt-viewer]') throw new Error(`first line is ${group}`);
  const m = new Map<string, string>();
  for (const line of lines) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq < 1) throw new Error(`not a key=value line: ${JSON.stringify(line)}`);
    const key = line.slice(0, eq);
    if (m.has(key)) throw new Error(`${key} twice`);
    const raw = line.slice(eq + 1).replace(/^[ \t]+/, '');
    m.set(
      key,
      raw.replace(/\\(.)/g, (_, c: string) => ({ s: ' ', t: '\t', n: '\n', r: '\r', '\\': '\\' })[c] ?? `\\${c}`),
    );
  }
  return m;
}

t.test('a full file', async (t) => {
  t.equal(
    renderVvFile(opts()),
    [
      '[virt-viewer]',
      'type=spice',
      'host=169.254.24.1',
      'port=5906',
      'password=Tick3t',
      'delete-this-file=1',
      'fullscreen=1',
      'title=Tabula',
      'enable-usbredir=1',
      'enable-usb-autoshare=1',
      'release-cursor=',
      '',
    ].join('\n'),
  );
});

t.test('no password line without a password; flags off', async (t) => {
  const m = read(renderVvFile(opts({ password: undefined, fullscreen: false, usbRedirect: false })));
  t.notOk(m.has('password'));
  t.equal(m.get('fullscreen'), '0');
  t.equal(m.get('enable-usbredir'), '0');
  t.equal(m.get('enable-usb-autoshare'), '0');
  t.equal(m.get('delete-this-file'), '1', 'always deleted after reading');
  t.equal(m.get('type'), 'spice');
});

t.test('hotkeys: release-cursor disabled; none of the others, nor the smartcard keys that crash remote-viewer 11', async (t) => {
  const m = read(renderVvFile(opts()));
  t.equal(m.get('release-cursor'), '');
  for (const k of ['toggle-fullscreen', 'secure-attention', 'zoom-in', 'zoom-out', 'zoom-reset', 'usb-device-reset', 'smartcard-insert', 'smartcard-remove']) {
    t.notOk(m.has(k), k);
  }
});

t.test('values arrive as written: backslashes, tabs and leading blanks escaped', async (t) => {
  const password = ' p\\a ss\tw#rd=; ';
  const title = '  Bibliothèque \\ Poste [2] ';
  const m = read(renderVvFile(opts({ password, title, host: 'fe80::1' })));
  t.equal(m.get('password'), password);
  t.equal(m.get('title'), title);
  t.equal(m.get('host'), 'fe80::1');
});

t.test('line breaks and other control characters are refused, naming the field', async (t) => {
  for (const [field, over] of [
    ['host', { host: '10.0.0.1\nport=1' }],
    ['title', { title: 'Tabula\r\n[evil]' }],
    ['title', { title: 'a\u0000b' }],
    ['password', { password: 'x\ny' }],
  ] as const) {
    t.throws(() => renderVvFile(opts(over)), { name: 'StationError', code: 'viewer-failed', message: new RegExp(`${field} contains control character`) }, field);
  }
});

t.test('host and port must make sense', async (t) => {
  t.throws(() => renderVvFile(opts({ host: '' })), { message: /host is empty/ });
  for (const port of [0, 65536, 59.5, NaN]) t.throws(() => renderVvFile(opts({ port })), { message: /port .* is not 1\.\.65535/ }, String(port));
});
