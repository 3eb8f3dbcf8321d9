// Where a station's settings come from, and in which order they win: built-in
// defaults < DHCP lease < the server's client.conf < the card's file < the
// image's file; and the agent's settings following the lease from one visit
// to the next (StationSettings on a fake source).
import t from 'tap';
import { StationSettings } from '../../src/app/station-settings.js';
import { settingsFrom, STATION_PATHS } from '../../src/config/station-sources.js';
import type { StationSourcesRead } from '../../src/domain/station-sources.js';
import { FakeSettingsSource, PATHS } from '../fakes/fake-settings-source.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');
/** A lease as networkd writes it, naming `url` in option 224 (none: undefined) and `serverId` as the DHCP server. */
function lease(url: string | undefined, serverId = '169.254.24.1'): string {
  return [
    '# This is private data. Do not parse.',
    'ADDRESS=169.254.24.125',
    'NETMASK=255.255.255.0',
    `SERVER_ADDRESS=${serverId}`,
    'LIFETIME=3600',
    `NTP=${serverId}`,
    ...(url === undefined ? [] : [`OPTION_224=${hex(url)}`]),
    '',
  ].join('\n');
}
const LEASE_FILE = `${PATHS.leaseDir}/2`;

function read(over: Partial<StationSourcesRead> = {}): StationSourcesRead {
  return { paths: PATHS, leases: [], card: undefined, config: '# nothing set\n', ...over };
}

t.test('the real paths: the image, the card as live-boot mounts it, networkd\'s leases', async (t) => {
  t.same(STATION_PATHS, { config: '/etc/tabula/station.conf', card: '/run/live/medium/tabula/station.conf', leaseDir: '/run/systemd/netif/leases' });
});

t.test('each key from the highest source that sets it', async (t) => {
  const all = read({
    leases: [{ origin: LEASE_FILE, text: lease('http://10.0.0.1:8081/') }],
    card: 'vdi_spice_port=7002\npool=linux\n',
    config: 'pool=desktop\n',
  });
  const server = { url: 'http://10.0.0.1:8081/client.conf', text: 'server_ip=10.0.0.2\nvdi_signal_port=6001\nvdi_spice_port=6002\nprotocol=1\nfuture_key=1\n' };
  const { config } = settingsFrom(all, 'kiosk-3', server);
  t.same(
    {
      server: [config.serverAddress, config.serverOrigin],
      http: config.httpPort,
      signal: config.signalPort,
      spice: config.spicePort,
      protocol: config.protocol,
      pool: config.pool,
      menu: config.menuTimeoutS,
    },
    {
      server: ['10.0.0.2', 'http://10.0.0.1:8081/client.conf line 1'],
      http: 8081,
      signal: 6001,
      spice: 7002,
      protocol: 'v1',
      pool: 'desktop',
      menu: 60,
    },
    "server: the server's file over the lease; http: the lease; signal: the server; spice: the card over the server; pool: the image over the card; menu: the default",
  );
});

t.test('server_ip, source by source: each higher one wins', async (t) => {
  const steps: [string, Partial<StationSourcesRead>, { url: string; text: string } | undefined, string | undefined, string][] = [
    ['nothing', {}, undefined, undefined, `no DHCP lease in ${PATHS.leaseDir}; ${PATHS.card} (absent); ${PATHS.config}`],
    ['the lease', { leases: [{ origin: LEASE_FILE, text: lease('http://10.0.0.1/') }] }, undefined, '10.0.0.1', `${LEASE_FILE} (DHCP option 224)`],
    ['the server', { leases: [{ origin: LEASE_FILE, text: lease('http://10.0.0.1/') }] }, { url: 'http://10.0.0.1/client.conf', text: 'server_ip=10.0.0.2\n' }, '10.0.0.2', 'http://10.0.0.1/client.conf line 1'],
    ['the card', { leases: [{ origin: LEASE_FILE, text: lease('http://10.0.0.1/') }], card: '\r\nserver_ip=10.0.0.3\r\n' }, { url: 'http://10.0.0.1/client.conf', text: 'server_ip=10.0.0.2\n' }, '10.0.0.3', `${PATHS.card} line 2`],
    ['the image', { leases: [{ origin: LEASE_FILE, text: lease('http://10.0.0.1/') }], card: 'server_ip=10.0.0.3\n', config: 'server_ip=10.0.0.4\n' }, { url: 'http://10.0.0.1/client.conf', text: 'server_ip=10.0.0.2\n' }, '10.0.0.4', `${PATHS.config} line 1`],
  ];
  for (const [what, sources, server, address, origin] of steps) {
    const { config } = settingsFrom(read(sources), 'kiosk-3', server);
    t.same([config.serverAddress, config.serverOrigin], [address, origin], what);
  }
});

t.test("the original stations' keys in the card's file, as a site without DHCP options writes them", async (t) => {
  const card = 'server_ip=192.168.10.5\r\nvdi_signal_port=5905\r\nvdi_spice_port=5906\r\nanimation_folder=/usr/share/backgrounds/animation\r\n';
  const { config, notes } = settingsFrom(read({ leases: [{ origin: LEASE_FILE, text: lease(undefined, '192.168.10.1') }], card }), 'kiosk-3');
  t.same([config.serverAddress, config.signalPort, config.spicePort, config.animationFolder], ['192.168.10.5', 5905, 5906, '/usr/share/backgrounds/animation']);
  t.equal(config.serverOrigin, `${PATHS.card} line 1`, "the card's server, not the site's DHCP server");
  t.same(notes, [`${LEASE_FILE}: no DHCP option 224 (the server's station URL): the server is the DHCP server, SERVER_ADDRESS=192.168.10.1`], "the lease's fallback is still said");
});

t.test("a bad card file is refused, naming the card and the line; the server's unknown keys are not", async (t) => {
  t.throws(() => settingsFrom(read({ card: 'server_ip=192.168.10.5\nserver_port=5905\n' }), 'k'), { code: 'config-invalid', message: `${PATHS.card} line 2: unknown key "server_port"` });
  t.throws(() => settingsFrom(read({ card: 'server_ip=192.168.10\n' }), 'k'), { code: 'config-invalid', message: new RegExp(`^${PATHS.card} line 1: server_ip=192\\.168\\.10: expected an IPv4 address`) });
  t.throws(() => settingsFrom(read({ config: 'vdi_spice_port=x\n' }), 'k'), { message: new RegExp(`^${PATHS.config} line 1: vdi_spice_port=x`) });
  t.equal(settingsFrom(read(), 'k', { url: 'http://s/client.conf', text: 'pools=a,b\nnewer=1\nserver_ip=10.0.0.2\n' }).config.serverAddress, '10.0.0.2');
});

t.test('a bad lease never refuses the settings: it names no server, and says why', async (t) => {
  const { config, notes } = settingsFrom(read({ leases: [{ origin: LEASE_FILE, text: 'OPTION_224=zz\nSERVER_ADDRESS=nowhere\n' }] }), 'k');
  t.equal(config.serverAddress, undefined);
  t.equal(config.serverOrigin, `${LEASE_FILE} (names no server); ${PATHS.card} (absent); ${PATHS.config}`);
  t.same(notes, [`${LEASE_FILE}: OPTION_224=zz is not hex, and SERVER_ADDRESS "nowhere" is not an IPv4 address (a station has no DNS): the lease names no server`]);
});

t.test('the agent follows the lease from one visit to the next', async (t) => {
  const src = new FakeSettingsSource();
  const logger = new MemoryLogger();
  src.served['http://169.254.24.1:8080/client.conf'] = 'server_ip=169.254.24.1\nvdi_signal_port=6905\nvdi_spice_port=6906\n';
  src.served['http://169.254.24.9:8080/client.conf'] = 'server_ip=169.254.24.9\nvdi_signal_port=7905\nvdi_spice_port=7906\n';

  const settings = await StationSettings.load(src, logger);
  t.equal(settings.current.serverAddress, undefined, 'before the first lease: no server, and no failure');
  t.same(src.asked, [], 'no client.conf asked for without a server');

  src.leases[2] = lease('http://169.254.24.1:8080/');
  await settings.refresh();
  t.same([settings.current.serverAddress, settings.current.httpPort, settings.current.signalPort, settings.current.spicePort], ['169.254.24.1', 8080, 6905, 6906], "the lease's server, the server's ports");
  t.same(src.asked, ['http://169.254.24.1:8080/client.conf'], "client.conf from the lease's URL");
  t.same(logger.find('server-changed').map((r) => r.fields), [{ server: '169.254.24.1', was: undefined, origin: 'http://169.254.24.1:8080/client.conf line 1' }]);

  src.leases[2] = lease('http://169.254.24.9:8080/', '169.254.24.9');
  await settings.refresh();
  t.same([settings.current.serverAddress, settings.current.signalPort], ['169.254.24.9', 7905], 'a new lease, a new server and its ports');

  delete src.leases[2];
  await settings.refresh();
  t.equal(settings.current.serverAddress, undefined, 'the lease gone: no server');
  t.equal(settings.current.signalPort, 5905, 'and the default ports again');
  t.same(logger.find('server-changed').map((r) => [r.fields['was'], r.fields['server']]), [
    [undefined, '169.254.24.1'],
    ['169.254.24.1', '169.254.24.9'],
    ['169.254.24.9', undefined],
  ]);
});

t.test("the lease's problems are logged when they appear, not at every visit", async (t) => {
  const src = new FakeSettingsSource();
  const logger = new MemoryLogger();
  src.leases[2] = lease(undefined);
  const settings = await StationSettings.load(src, logger);
  await settings.refresh();
  await settings.refresh();
  t.same(logger.find('lease-problem').map((r) => r.fields['detail']), [`${LEASE_FILE}: no DHCP option 224 (the server's station URL): the server is the DHCP server, SERVER_ADDRESS=169.254.24.1`]);
  t.equal(settings.current.serverAddress, '169.254.24.1');
  t.same(src.asked.slice(-1), ['http://169.254.24.1/client.conf'], 'the server asked on port 80: the DHCP server identifier has no port');
  src.leases[2] = lease('https://169.254.24.1/');
  await settings.refresh();
  t.equal(logger.find('lease-problem').length, 2, 'a new problem is logged');
  t.match(logger.find('lease-problem')[1]?.fields['detail'], /"https:\/\/169\.254\.24\.1\/" is not an http:\/\/ADDRESS\[:PORT\]\/ URL/);
});

t.test("files that turned bad keep the last good settings; a server that does not answer leaves the station's own", async (t) => {
  const src = new FakeSettingsSource();
  const logger = new MemoryLogger();
  src.leases[2] = lease('http://169.254.24.1:8080/');
  src.served['http://169.254.24.1:8080/client.conf'] = 'vdi_signal_port=6905\n';
  const settings = await StationSettings.load(src, logger);
  t.equal(settings.current.signalPort, 6905);
  src.card = 'vdi_signal_port=zero\n';
  await settings.refresh();
  t.equal(settings.current.signalPort, 6905, 'the last good settings');
  t.match(logger.find('config-refused')[0]?.fields['error'], `${PATHS.card} line 1: vdi_signal_port=zero`);
  src.card = undefined;
  src.served = {};
  await settings.refresh();
  t.same([settings.current.serverAddress, settings.current.signalPort], ['169.254.24.1', 5905], "the server silent: the lease's server, the default port");
});

t.test('the station cannot start with its own files bad, but can without a server', async (t) => {
  const src = new FakeSettingsSource();
  src.config = 'usb_allow=keyboards\n';
  await t.rejects(StationSettings.load(src, new MemoryLogger()), { code: 'config-invalid', message: new RegExp(`^${PATHS.config} line 1: usb_allow`) });
  src.config = undefined;
  await t.rejects(StationSettings.load(src, new MemoryLogger()), { code: 'config-unreadable' });
});
