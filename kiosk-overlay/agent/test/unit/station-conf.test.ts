import t, { type Test } from 'tap';
import { buildStationConfig, parseKeyValues, requireServer, serverConfigUrl, slideshowListUrl, type ConfSource, type ConfText } from '../../src/config/station-conf.js';
import type { StationConfig } from '../../src/config/station-config.js';
import { StationError } from '../../src/domain/errors.js';
import { DEFAULT_USB_POLICY } from '../../src/domain/usb-policy.js';
import { renderClientConf } from '../../../../supervisor/src/render/station-config.js';

const LOCAL = '/etc/tabula/station.conf';
const SERVER = 'http://169.254.24.1/client.conf';

/** The seed's /etc/client.conf, as the original stations carry it. */
const SEED_CLIENT_CONF = `server_ip=169.254.24.1
vdi_signal_port=5905
vdi_spice_port=5906
animation_folder=/usr/share/backgrounds/animation
background_folder=/usr/share/backgrounds2/fedora-workstation
`;

/** The server's client.conf as the supervisor renders it (supervisor/src/render/station-config.ts). */
const SERVER_CLIENT_CONF = `# Served by the Tabula supervisor; a station reads it at boot and before each session.
server_ip=169.254.24.1
vdi_signal_port=5905
vdi_spice_port=5906
slideshow_url=http://169.254.24.1/slideshow/
protocol=1
pools=desktop,linux
`;

const local = (text: string): ConfText => ({ origin: LOCAL, text, strict: true });
const server = (text: string): ConfText => ({ origin: SERVER, text, strict: false });
const build = (text: string, hostname = 'kiosk-3') => buildStationConfig([local(text)], hostname);

/** The config-invalid message, or a failure when the sources were accepted. */
function refusal(t: Test, sources: readonly ConfSource[], hostname = 'kiosk-3'): string {
  try {
    buildStationConfig(sources, hostname);
  } catch (e) {
    t.type(e, StationError);
    t.equal((e as StationError).code, 'config-invalid');
    return (e as StationError).message;
  }
  t.fail('config was accepted');
  return '';
}

/** A local file with server_ip and one more line: the message when it is refused. */
const refusedLine = (t: Test, line: string) => refusal(t, [local(`server_ip=169.254.24.1\n${line}\n`)]);

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

t.test("the seed's client.conf, verbatim: its values, and defaults for the rest", async (t) => {
  const cfg = build(SEED_CLIENT_CONF);
  t.same(cfg, {
    ...DEFAULTS,
    serverAddress: '169.254.24.1',
    serverOrigin: `${LOCAL} line 1`,
    stationName: 'kiosk-3',
    signalPort: 5905,
    spicePort: 5906,
    animationFolder: '/usr/share/backgrounds/animation',
    backgroundFolder: '/usr/share/backgrounds2/fedora-workstation',
  });
  t.ok(Object.isFrozen(cfg), 'the config is frozen');
  t.ok(Object.isFrozen(cfg.usb), 'and so is its USB policy');
  t.ok(Object.isFrozen(cfg.poolLabels), 'and its pool labels');
});

t.test('the same file with CRLF line ends, comments, blank lines, spaces and quotes', async (t) => {
  const text = `# the seed's stations\r\n\r\n  server_ip = "169.254.24.1"  \r\nvdi_signal_port=5905\r\n\t# spice\r\nvdi_spice_port = 5906\r\nanimation_folder="/usr/share/backgrounds/animation"\r\nbackground_folder=/usr/share/backgrounds2/fedora-workstation`;
  t.same(build(text), { ...build(SEED_CLIENT_CONF), serverOrigin: `${LOCAL} line 3` }, 'the same values; server_ip is on line 3 here');
  t.same(build('\ufeffserver_ip=169.254.24.1\n').serverAddress, '169.254.24.1', 'a byte-order mark is no part of the first key');
});

t.test('every key of ours', async (t) => {
  const cfg = build(`server_ip=10.0.0.1
vdi_signal_port=7000
vdi_spice_port=7001
animation_folder=/srv/anim
background_folder=/srv/bg
http_port=8080
server_config=no
slideshow_url=https://pictures.example/list.json
slideshow_interval=15
blank_after=600
station_name=hall.kiosk_2
protocol=v1
pool=linux
pool_labels=desktop:Windows 10,linux:Debian
menu_timeout=90
kiosk_user=visitor
display=wayland-1
activity=evdev
input_report_interval=10
retry_min=2
retry_max=60
usb_redirect=off
usb_allow=printer,smart-card
usb_deny=hid,wireless
usb_allow_devices=04a9:2220,0C2E:0B61
usb_deny_devices=dead:BEEF
viewer=/opt/spice/bin/remote-viewer
viewer_fullscreen=false
screen_program=/opt/tabula/screen.js
prompt=Touch me = start!
`);
  t.same(cfg, {
    serverAddress: '10.0.0.1',
    serverOrigin: `${LOCAL} line 1`,
    signalPort: 7000,
    spicePort: 7001,
    httpPort: 8080,
    serverConfig: false,
    animationFolder: '/srv/anim',
    backgroundFolder: '/srv/bg',
    slideshowUrl: 'https://pictures.example/list.json',
    slideshowIntervalS: 15,
    blankAfterS: 600,
    stationName: 'hall.kiosk_2',
    protocol: 'v1',
    pool: 'linux',
    poolLabels: { desktop: 'Windows 10', linux: 'Debian' },
    menuTimeoutS: 90,
    kioskUser: 'visitor',
    display: 'wayland-1',
    activity: 'evdev',
    inputReportS: 10,
    retryMinS: 2,
    retryMaxS: 60,
    usb: {
      redirect: false,
      allowClasses: ['printer', 'smart-card'],
      denyClasses: ['hid', 'wireless'],
      allowDevices: [
        { vendor: 0x04a9, product: 0x2220 },
        { vendor: 0x0c2e, product: 0x0b61 },
      ],
      denyDevices: [{ vendor: 0xdead, product: 0xbeef }],
    },
    viewer: '/opt/spice/bin/remote-viewer',
    viewerFullscreen: false,
    screenProgram: '/opt/tabula/screen.js',
    prompt: 'Touch me = start!',
  });
});

t.test('the smaller choices', async (t) => {
  const one = (line: string) => build(`server_ip=169.254.24.1\n${line}\n`);
  t.same(
    ['protocol=auto', 'protocol=1', 'protocol=v1', 'protocol=0', 'protocol=v0'].map((l) => one(l).protocol),
    ['auto', 'v1', 'v1', 'v0', 'v0'],
  );
  t.same(
    ['server_config=1', 'server_config=YES', 'server_config=true', 'server_config=On', 'server_config=0', 'server_config=No', 'server_config=FALSE', 'server_config=off'].map((l) => one(l).serverConfig),
    [true, true, true, true, false, false, false, false],
  );
  t.same(
    ['display=:0', 'display=:12', 'display=:1.0', 'display=wayland-0\nactivity=evdev'].map((l) => one(l).display),
    [':0', ':12', ':1.0', 'wayland-0'],
  );
  t.equal(one('display=wayland-0\nactivity=none').activity, 'none');
  t.same(
    ['activity=x11', 'activity=evdev', 'activity=none'].map((l) => one(l).activity),
    ['x11', 'evdev', 'none'],
  );
  t.equal(one('pool=').pool, '', 'an empty pool: the visitor chooses');
  t.equal(one('slideshow_url=').slideshowUrl, '', 'no slideshow from the server');
  t.equal(one('slideshow_url=auto').slideshowUrl, 'auto');
  t.equal(one('viewer=spicy').viewer, 'spicy', 'a program on the PATH');
  t.equal(one('blank_after=0').blankAfterS, 0);
  t.same(one('usb_allow=').usb.allowClasses, [], 'an empty list allows no class');
  t.same(one('usb_allow= audio , video ,').usb.allowClasses, ['audio', 'video'], 'spaces and a trailing comma');
  t.same(one('usb_deny=HID,Hid,wireless').usb.denyClasses, ['hid', 'wireless'], 'class names in any case, each once');
  t.same(one('usb_deny_devices=04A9:2220,04a9:2220').usb.denyDevices, [{ vendor: 0x04a9, product: 0x2220 }], 'a device named twice counts once');
  t.same(one('usb_redirect=no').usb, { ...DEFAULT_USB_POLICY, redirect: false }, 'one USB key leaves the others at their defaults');
  t.equal(one('vdi_signal_port=05905').signalPort, 5905, 'leading zeros');
  t.equal(one('prompt=').prompt, '', 'an empty prompt');
  t.equal(one(`prompt=${'x'.repeat(200)}`).prompt.length, 200);
  t.equal(one('server_ip=10.1.2.3').serverAddress, '10.1.2.3', 'a key given twice: the last one');
});

t.test('pool_labels: pool:label pairs, labels with spaces and colons', async (t) => {
  const labels = (v: string) => build(`server_ip=169.254.24.1\npool_labels=${v}\n`).poolLabels;
  t.same(labels('desktop:Windows 10,linux:Debian 12 (Bookworm)'), { desktop: 'Windows 10', linux: 'Debian 12 (Bookworm)' });
  t.same(labels(' desktop : Windows 10 ,  linux:  Debian  '), { desktop: 'Windows 10', linux: 'Debian' }, 'spaces around names and labels are trimmed');
  t.same(labels('lab:Lab: room 3'), { lab: 'Lab: room 3' }, 'the first colon separates');
  t.same(labels('desktop:Windows,desktop:Windows 11'), { desktop: 'Windows 11' }, 'a pool named twice: the last label');
  t.same(labels(''), {});
  for (const v of ['desktop', 'desktop:', ':Windows', 'desk top:Windows', 'desktop:Windows,linux']) {
    const m = refusedLine(t, `pool_labels=${v}`);
    t.match(m, /^\/etc\/tabula\/station\.conf line \d+: pool_labels=.*: expected pool:label pairs/, v);
  }
});

t.test('the station name defaults to the host name, when it is a valid one', async (t) => {
  t.equal(build(SEED_CLIENT_CONF, 'kiosk-7').stationName, 'kiosk-7');
  t.equal(build(SEED_CLIENT_CONF, 'kiosk.hall.example').stationName, 'kiosk.hall.example');
  t.equal(build(SEED_CLIENT_CONF, 'bad host!').stationName, 'station');
  t.equal(build(SEED_CLIENT_CONF, '').stationName, 'station');
  t.equal(build(SEED_CLIENT_CONF, 'k'.repeat(33)).stationName, 'station');
  t.equal(build(`${SEED_CLIENT_CONF}station_name=kiosk-3\n`, 'localhost').stationName, 'kiosk-3', 'station_name wins');
});

t.test('a key the local file does not know is refused with the file and the line', async (t) => {
  const m = refusal(t, [local(`${SEED_CLIENT_CONF}# a comment\n\nserver_port=5905\n`)]);
  t.equal(m, `${LOCAL} line 8: unknown key "server_port"`);
  t.equal(refusal(t, [local('server_ip=169.254.24.1\nthis is no key value\n')]), `${LOCAL} line 2: expected key=value, got "this is no key value"`);
  t.equal(refusal(t, [local('server_ip=169.254.24.1\n=5905\n')]), `${LOCAL} line 2: expected key=value, got "=5905"`);
  t.match(refusal(t, [server('server_ip=169.254.24.1\nno equals sign\n')]), `${SERVER} line 2: expected key=value`, "the server's file too must be key=value lines");
});

t.test("unknown keys in a non-strict source (the server's, maybe newer) are ignored", async (t) => {
  const cfg = buildStationConfig([server('server_ip=169.254.24.1\nfuture_key=1\nvdi_spice_port=6006\n')], 'kiosk-3');
  t.equal(cfg.spicePort, 6006);
  t.notOk('future_key' in cfg);
  t.same([...parseKeyValues(server('future_key=1\nserver_ip=1.2.3.4\n'))], [['server_ip', { value: '1.2.3.4', line: 2 }]]);
  t.same([...parseKeyValues(local('pools=desktop,linux\n'))], [['pools', { value: 'desktop,linux', line: 1 }]], "'pools' (the server's list) is known, even locally");
  t.notOk('pools' in build(`${SEED_CLIENT_CONF}pools=desktop\n`), '…and does not become part of the config');
});

t.test('no source names the server: no error here, and requireServer names every source looked at', async (t) => {
  const cfg = buildStationConfig([{ origin: 'no DHCP lease in /run/systemd/netif/leases', values: {} }, local('vdi_signal_port=5905\n')], 'kiosk-3');
  t.equal(cfg.serverAddress, undefined, 'no server yet: the normal state before the first lease');
  t.equal(cfg.signalPort, 5905, 'the rest of the config is there');
  t.equal(cfg.serverOrigin, `no DHCP lease in /run/systemd/netif/leases; ${LOCAL}`);
  t.throws(() => requireServer(cfg), {
    code: 'server-unknown',
    message: `no server known: no DHCP lease names one and server_ip is not set (looked at: no DHCP lease in /run/systemd/netif/leases; ${LOCAL})`,
  });
  t.equal(serverConfigUrl(cfg), '', "no server: no client.conf to fetch");
  t.equal(slideshowListUrl(cfg), '', 'and no slideshow list');
  t.equal(buildStationConfig([], 'k').serverOrigin, 'no config');
  t.equal(requireServer(build(SEED_CLIENT_CONF)), '169.254.24.1', 'requireServer gives a server that is known');
});

t.test('values from elsewhere than a file (the lease): under the files, named by their origin', async (t) => {
  const LEASE = '/run/systemd/netif/leases/2 (DHCP option 224)';
  const lease: ConfSource = { origin: LEASE, values: { server_ip: '169.254.24.1', http_port: '8080' } };
  const fromLease = buildStationConfig([lease, local('# nothing\n')], 'k');
  t.equal(fromLease.serverAddress, '169.254.24.1');
  t.equal(fromLease.httpPort, 8080);
  t.equal(fromLease.serverOrigin, LEASE, 'the server named by the lease says so');
  t.equal(serverConfigUrl(fromLease), 'http://169.254.24.1:8080/client.conf', "the server's client.conf is asked for at the lease's port");
  const pinned = buildStationConfig([lease, local('server_ip=10.0.0.9\n')], 'k');
  t.equal(pinned.serverAddress, '10.0.0.9', 'a file wins over the lease');
  t.equal(pinned.serverOrigin, `${LOCAL} line 1`);
  t.equal(pinned.httpPort, 8080, 'key by key: the lease still gives what the file does not set');
  t.equal(refusal(t, [{ origin: LEASE, values: { http_port: '0' } }, local('')]), `${LEASE}: http_port=0: expected a whole number from 1 to 65535`);
});

t.test('bad values name the key, the value and the file', async (t) => {
  const cases: [string, RegExp][] = [
    ['server_ip=169.254.24', /server_ip=169\.254\.24: expected an IPv4 address/],
    ['server_ip=server.lan', /server_ip=server\.lan: expected an IPv4 address/],
    ['server_ip=256.1.1.1', /server_ip=256\.1\.1\.1: expected an IPv4 address/],
    ['vdi_signal_port=0', /vdi_signal_port=0: expected a whole number from 1 to 65535/],
    ['vdi_spice_port=65536', /vdi_spice_port=65536: expected a whole number from 1 to 65535/],
    ['vdi_spice_port=59o6', /vdi_spice_port=59o6: expected a whole number/],
    ['vdi_spice_port=-1', /vdi_spice_port=-1: expected a whole number/],
    ['http_port=', /http_port=: expected a whole number/],
    ['animation_folder=backgrounds/animation', /animation_folder=backgrounds\/animation: expected an absolute path/],
    ['background_folder=~/bg', /background_folder=~\/bg: expected an absolute path/],
    ['server_config=maybe', /server_config=maybe: expected yes or no/],
    ['slideshow_url=ftp://server/list', /slideshow_url=ftp:\/\/server\/list: expected an http:\/\/ URL/],
    ['slideshow_url=not a url', /slideshow_url=not a url: expected an http:\/\/ URL/],
    ['slideshow_interval=0', /slideshow_interval=0: expected a whole number from 1 to 3600/],
    ['blank_after=86401', /blank_after=86401: expected a whole number from 0 to 86400/],
    ['station_name=kiosk 3', /station_name=kiosk 3: expected a name of 1-32/],
    ['station_name=kiosk=3', /station_name=kiosk=3: expected a name/],
    ['protocol=2', /protocol=2: expected one of auto, 1, v1, 0, v0/],
    ['pool=linux desktop', /pool=linux desktop: expected a name/],
    ['menu_timeout=4', /menu_timeout=4: expected a whole number from 5 to 3600/],
    ['kiosk_user=root;', /kiosk_user=root;: expected a name/],
    ['display=localhost:0', /display=localhost:0: expected an X display/],
    ['activity=mouse', /activity=mouse: expected one of x11, evdev, none/],
    ['input_report_interval=61', /input_report_interval=61: expected a whole number from 1 to 60/],
    ['retry_min=0', /retry_min=0: expected a whole number from 1 to 600/],
    ['retry_max=3601', /retry_max=3601: expected a whole number from 1 to 3600/],
    ['usb_redirect=sometimes', /usb_redirect=sometimes: expected yes or no/],
    ['usb_allow=mass-storage,keyboard', /usb_allow: unknown USB class "keyboard" in "mass-storage,keyboard"; valid: audio, comm, hid/],
    ['usb_deny=hid,human', /usb_deny: unknown USB class "human"/],
    ['usb_allow_devices=04a9:2220,04a9:22', /usb_allow_devices: "04a9:22" in "04a9:2220,04a9:22" is not a USB device id/],
    ['usb_deny_devices=04a92220', /usb_deny_devices: "04a92220" in "04a92220" is not a USB device id/],
    ['usb_deny_devices=g4a9:2220', /usb_deny_devices: "g4a9:2220" .* is not a USB device id/],
    ['viewer=../bin/remote-viewer', /viewer=\.\.\/bin\/remote-viewer: expected an absolute path/],
    ['viewer=remote viewer', /viewer=remote viewer: expected a name/],
    ['viewer_fullscreen=2', /viewer_fullscreen=2: expected yes or no/],
    ['screen_program=screen.js', /screen_program=screen\.js: expected an absolute path/],
    [`prompt=${'x'.repeat(201)}`, /prompt=x{20}…: expected at most 200 characters/],
  ];
  for (const [line, expected] of cases) {
    const m = refusedLine(t, line);
    t.match(m, new RegExp(`^${LOCAL.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} line \\d+: `), `${line}: the message names the file and the line`);
    t.match(m, expected, line);
  }
});

t.test('a bad value names its line too', async (t) => {
  t.match(refusal(t, [local(`${SEED_CLIENT_CONF}vdi_signal_port=0\n`)]), `${LOCAL} line 6: vdi_signal_port=0`);
});

t.test('activity=x11 needs an X display', async (t) => {
  t.equal(refusedLine(t, 'display=wayland-0'), 'activity=x11 needs an X display, not display=wayland-0 (use evdev on Wayland)');
  t.equal(refusedLine(t, 'display=wayland-0\nactivity=x11'), 'activity=x11 needs an X display, not display=wayland-0 (use evdev on Wayland)');
});

t.test('retry_min above retry_max is refused', async (t) => {
  t.equal(refusedLine(t, 'retry_min=40'), 'retry_min=40 is above retry_max=30');
  t.equal(refusal(t, [local('server_ip=169.254.24.1\nretry_min=5\nretry_max=4\n')]), 'retry_min=5 is above retry_max=4');
  t.equal(build('server_ip=169.254.24.1\nretry_min=5\nretry_max=5\n').retryMaxS, 5, 'equal is fine');
});

t.test("the server's client.conf under the local file: the local file wins", async (t) => {
  const cfg = buildStationConfig([server(SERVER_CLIENT_CONF), local(SEED_CLIENT_CONF)], 'kiosk-3');
  t.same(cfg, {
    ...DEFAULTS,
    serverAddress: '169.254.24.1',
    serverOrigin: `${LOCAL} line 1`,
    stationName: 'kiosk-3',
    animationFolder: '/usr/share/backgrounds/animation',
    backgroundFolder: '/usr/share/backgrounds2/fedora-workstation',
    slideshowUrl: 'http://169.254.24.1/slideshow/',
    protocol: 'v1',
  });

  const mine = buildStationConfig([server(SERVER_CLIENT_CONF), local('server_ip=10.9.9.9\nvdi_spice_port=6000\nprotocol=auto\nslideshow_url=\n')], 'kiosk-3');
  t.equal(mine.serverAddress, '10.9.9.9', 'the local server_ip');
  t.equal(mine.spicePort, 6000, 'the local spice port');
  t.equal(mine.protocol, 'auto', 'the local protocol');
  t.equal(mine.slideshowUrl, '', 'the local (empty) slideshow_url');
  t.equal(mine.signalPort, 5905, "the server's signal port, not set locally");

  const onlyServer = buildStationConfig([server(SERVER_CLIENT_CONF), local('# nothing here\n')], 'kiosk-3');
  t.equal(onlyServer.serverAddress, '169.254.24.1', 'server_ip may come from the server alone');

  const badServer = refusal(t, [server('server_ip=169.254.24.1\nvdi_spice_port=70000\n'), local(SEED_CLIENT_CONF.replace('vdi_spice_port=5906\n', ''))]);
  t.equal(badServer, `${SERVER} line 2: vdi_spice_port=70000: expected a whole number from 1 to 65535`, "a bad value from the server names the server's file");
  t.same(
    buildStationConfig([server('server_ip=169.254.24.1\nvdi_spice_port=70000\n'), local(SEED_CLIENT_CONF)], 'kiosk-3').spicePort,
    5906,
    "a bad server value the local file overrides is never looked at",
  );
});

t.test("what the supervisor renders is what the agent reads", async (t) => {
  const text = renderClientConf({ serverAddress: '169.254.24.1', signalPort: 5905, spicePort: 5906, slideshowUrl: 'http://169.254.24.1/slideshow/', pools: ['desktop', 'linux'] });
  t.equal(text, SERVER_CLIENT_CONF, 'the rendering this test quotes is the current one');
  const strictly = buildStationConfig([{ origin: SERVER, text, strict: true }], 'kiosk-3');
  t.equal(strictly.protocol, 'v1', 'every key the server renders is known (read even strictly)');
  const odd = renderClientConf({ serverAddress: '10.0.0.1', signalPort: 7000, spicePort: 7001, slideshowUrl: 'http://10.0.0.1:8080/slideshow/', pools: [] });
  t.same(
    (({ serverAddress, signalPort, spicePort, slideshowUrl }) => ({ serverAddress, signalPort, spicePort, slideshowUrl }))(buildStationConfig([server(odd)], 'k')),
    { serverAddress: '10.0.0.1', signalPort: 7000, spicePort: 7001, slideshowUrl: 'http://10.0.0.1:8080/slideshow/' },
  );
});

t.test('slideshowListUrl and serverConfigUrl', async (t) => {
  const seed = build(SEED_CLIENT_CONF);
  t.equal(slideshowListUrl(seed), 'http://169.254.24.1/slideshow/');
  t.equal(serverConfigUrl(seed), 'http://169.254.24.1/client.conf');
  const port = build(`${SEED_CLIENT_CONF}http_port=8080\n`);
  t.equal(slideshowListUrl(port), 'http://169.254.24.1:8080/slideshow/');
  t.equal(serverConfigUrl(port), 'http://169.254.24.1:8080/client.conf');
  t.equal(slideshowListUrl(build(`${SEED_CLIENT_CONF}slideshow_url=http://pics.lan/list.json\n`)), 'http://pics.lan/list.json', 'an explicit URL');
  t.equal(slideshowListUrl(build(`${SEED_CLIENT_CONF}slideshow_url=\n`)), '', 'none');
  t.equal(serverConfigUrl(build(`${SEED_CLIENT_CONF}server_config=no\n`)), '', "the server's file not read");
});
