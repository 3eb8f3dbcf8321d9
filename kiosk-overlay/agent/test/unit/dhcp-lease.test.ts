// The DHCP lease as systemd-networkd keeps it, read for the server's address and
// HTTP port: the lease a real networkd (252) wrote on a station LAN with the
// server's dnsmasq, and the odd ones a station may meet.
import t from 'tap';
import { chooseLease, leaseValues, parseNetworkdLease, type DhcpLease } from '../../src/config/dhcp-lease.js';
import { renderStationDnsmasq } from '../../../../supervisor/src/render/dnsmasq-stations.js';

const FILE = '/run/systemd/netif/leases/2';
const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');

/**
 * What systemd-networkd 252 wrote in /run/systemd/netif/leases/2 for the
 * shipped 20-tabula-wired.network against dnsmasq with
 * --dhcp-option-force=224,"http://169.254.24.1:8080/" (the integration test
 * station-lease.test.ts makes the same exchange).
 */
const NETWORKD_LEASE = `# This is private data. Do not parse.
ADDRESS=169.254.24.125
NETMASK=255.255.255.0
SERVER_ADDRESS=169.254.24.1
NEXT_SERVER=169.254.24.1
BROADCAST=169.254.24.255
T1=60
T2=105
LIFETIME=120
NTP=169.254.24.1
HOSTNAME=vm
CLIENTID=fff1db766800020000ab110033bdebf95e192c
OPTION_224=687474703a2f2f3136392e3235342e32342e313a383038302f
`;

/** The same lease with OPTION_224 replaced (or removed, for undefined) and other lines changed. */
function lease(option224: string | undefined, change: Record<string, string | undefined> = {}): string {
  let text = NETWORKD_LEASE.replace(/^OPTION_224=.*\n/m, option224 === undefined ? '' : `OPTION_224=${option224}\n`);
  for (const [key, value] of Object.entries(change)) {
    text = text.replace(new RegExp(`^${key}=.*\\n`, 'm'), value === undefined ? '' : `${key}=${value}\n`);
  }
  return text;
}

const parse = (text: string) => parseNetworkdLease(FILE, text);

t.test("networkd's own lease: the server and the port from option 224", async (t) => {
  t.same(parse(NETWORKD_LEASE), { origin: FILE, serverAddress: '169.254.24.1', httpPort: 8080, serverFrom: 'option-224', notes: [] });
});

t.test("what the server's dnsmasq sends is what the station reads", async (t) => {
  for (const [address, httpPort] of [
    ['169.254.24.1', 80],
    ['10.20.30.40', 8088],
  ] as const) {
    const conf = renderStationDnsmasq(
      { interface: 'br-stations', address, prefixLength: 24, dhcpRange: { from: '10.20.30.100', to: '10.20.30.150' }, leaseSeconds: 3600, reservations: [], ntp: true, httpPort },
      { leaseFile: '/var/lib/tabula/dnsmasq.leases' },
    );
    const url = /^dhcp-option-force=224,"(.*)"$/m.exec(conf)?.[1];
    if (!t.ok(url, `dnsmasq sends option 224 (${conf.split('\n').find((l) => l.includes('224'))})`)) continue;
    const got = parse(lease(hex(url!), { SERVER_ADDRESS: '192.0.2.99' }));
    t.same([got.serverAddress, got.httpPort, got.serverFrom, got.notes], [address, httpPort, 'option-224', []], url!);
  }
});

t.test('the forms of a good option 224', async (t) => {
  const server = (url: string) => {
    const l = parse(lease(hex(url)));
    return [l.serverAddress, l.httpPort, l.notes.length];
  };
  t.same(server('http://169.254.24.7/'), ['169.254.24.7', 80, 0], 'no port: 80');
  t.same(server('http://169.254.24.7'), ['169.254.24.7', 80, 0], 'no path');
  t.same(server('HTTP://169.254.24.7:81/'), ['169.254.24.7', 81, 0], 'the scheme in any case');
  t.same(parse(lease(hex('http://169.254.24.7:81/').toUpperCase())).httpPort, 81, 'upper-case hex');
  t.same(server('http://169.254.24.7:81/\0'), ['169.254.24.7', 81, 0], 'a NUL at the end (a C string) is dropped');
  const withPath = parse(lease(hex('http://169.254.24.7:81/tabula/')));
  t.same([withPath.serverAddress, withPath.httpPort], ['169.254.24.7', 81], 'a path: the server and port still count');
  t.same(withPath.notes, [`${FILE}: option 224 "http://169.254.24.7:81/tabula/": the path /tabula/ is ignored (the station endpoint is at the server's root)`]);
});

t.test('no option 224 (a DHCP server other than Tabula\'s): the DHCP server, said in the log', async (t) => {
  t.same(parse(lease(undefined)), {
    origin: FILE,
    serverAddress: '169.254.24.1',
    serverFrom: 'server-identifier',
    notes: [`${FILE}: no DHCP option 224 (the server's station URL): the server is the DHCP server, SERVER_ADDRESS=169.254.24.1`],
  });
});

t.test('a bad option 224 is set aside for the DHCP server, naming what was wrong', async (t) => {
  const cases: [string, string][] = [
    ['68747', 'OPTION_224=68747 is not hex'],
    ['zz7474703a2f2f', 'OPTION_224=zz7474703a2f2f is not hex'],
    ['', 'OPTION_224= is not hex'],
    [hex('https://169.254.24.1/'), 'option 224 "https://169.254.24.1/" is not an http://ADDRESS[:PORT]/ URL'],
    [hex('ftp://169.254.24.1/'), 'option 224 "ftp://169.254.24.1/" is not an http://ADDRESS[:PORT]/ URL'],
    [hex('169.254.24.1:8080'), 'option 224 "169.254.24.1:8080" is not an http://ADDRESS[:PORT]/ URL'],
    [hex('http://169.254.24.1:80x/'), 'option 224 "http://169.254.24.1:80x/" is not an http://ADDRESS[:PORT]/ URL'],
    [hex('http://tabula.lan:8080/'), 'option 224 "http://tabula.lan:8080/": "tabula.lan" is not an IPv4 address (a station has no DNS)'],
    [hex('http://[fd24::1]:8080/'), 'option 224 "http://[fd24::1]:8080/" is not an http://ADDRESS[:PORT]/ URL'],
    [hex('http://169.254.24.010/'), 'option 224 "http://169.254.24.010/": "169.254.24.010" is not an IPv4 address (a station has no DNS)'],
    [hex('http://user@169.254.24.1/'), 'option 224 "http://user@169.254.24.1/": "user@169.254.24.1" is not an IPv4 address (a station has no DNS)'],
    [hex('http://127.0.0.1:8080/'), 'option 224 "http://127.0.0.1:8080/": 127.0.0.1 is this machine (loopback)'],
    [hex('http://0.0.0.0/'), 'option 224 "http://0.0.0.0/": 0.0.0.0 is no host'],
    [hex('http://255.255.255.255/'), 'option 224 "http://255.255.255.255/": 255.255.255.255 is the broadcast address'],
    [hex('http://169.254.24.1:0/'), 'option 224 "http://169.254.24.1:0/": port 0 is not a port (1-65535)'],
    [hex('http://169.254.24.1:65536/'), 'option 224 "http://169.254.24.1:65536/": port 65536 is not a port (1-65535)'],
    // Long hex is cut at 40 digits (20 bytes) in the message.
    [hex('http://169.254.24.1/\nserver_ip=6.6.6.6'), `option 224 (${hex('http://169.254.24.1/')}…) is not a URL: it has bytes outside printable ASCII`],
    [hex('http://a b/'), `option 224 (${hex('http://a b/')}) is not a URL: it has bytes outside printable ASCII`],
  ];
  for (const [option, why] of cases) {
    const got = parse(lease(option));
    t.same(
      got,
      { origin: FILE, serverAddress: '169.254.24.1', serverFrom: 'server-identifier', notes: [`${FILE}: ${why}: the server is the DHCP server, SERVER_ADDRESS=169.254.24.1`] },
      why,
    );
  }
});

t.test('a lease that names no server says why, and gives none', async (t) => {
  const none = (text: string, why: string) => t.same(parse(text), { origin: FILE, notes: [`${FILE}: ${why}: the lease names no server`] }, why);
  none(lease(undefined, { SERVER_ADDRESS: undefined }), "no DHCP option 224 (the server's station URL), and there is no SERVER_ADDRESS either");
  none(lease(undefined, { SERVER_ADDRESS: 'dhcp.lan' }), 'no DHCP option 224 (the server\'s station URL), and SERVER_ADDRESS "dhcp.lan" is not an IPv4 address (a station has no DNS)');
  none(lease(undefined, { SERVER_ADDRESS: 'fd24::1' }), 'no DHCP option 224 (the server\'s station URL), and SERVER_ADDRESS "fd24::1" is not an IPv4 address (a station has no DNS)');
  none(lease(undefined, { SERVER_ADDRESS: '0.0.0.0' }), "no DHCP option 224 (the server's station URL), and SERVER_ADDRESS 0.0.0.0 is no host");
  none(lease(hex('https://x/'), { SERVER_ADDRESS: undefined }), 'option 224 "https://x/" is not an http://ADDRESS[:PORT]/ URL, and there is no SERVER_ADDRESS either');
  none('', "no DHCP option 224 (the server's station URL), and there is no SERVER_ADDRESS either");
  none('\u0000\u0001garbage\n==\n', "no DHCP option 224 (the server's station URL), and there is no SERVER_ADDRESS either");
  t.same(parse('{\n  "Address": [169, 254, 24, 125],\n  "Server_Address": [169, 254, 24, 1]\n}\n'), {
    origin: FILE,
    notes: [`${FILE}: a JSON lease (as later systemd versions write) is not read: the lease names no server`],
  });
});

t.test('lines are read as networkd writes them, nothing more', async (t) => {
  t.equal(parse(`${NETWORKD_LEASE}# OPTION_224=${hex('http://10.0.0.1/')}\n`).serverAddress, '169.254.24.1', 'a comment is no option');
  t.equal(parse(NETWORKD_LEASE.replace(/\n/g, '\r\n')).httpPort, 8080, 'CRLF');
  t.equal(parse(lease(undefined, { SERVER_ADDRESS: undefined }) + 'server_address=10.0.0.1\n').serverAddress, undefined, 'keys are upper case');
});

t.test('several leases (one per interface): option 224 first, then any server, in interface order', async (t) => {
  const l = (origin: string, text: string) => parseNetworkdLease(origin, text);
  const withUrl = l('/l/3', lease(hex('http://10.0.0.3:8080/')));
  const identifierOnly = l('/l/2', lease(undefined, { SERVER_ADDRESS: '10.0.0.2' }));
  const none = l('/l/1', lease(undefined, { SERVER_ADDRESS: undefined }));
  const other = l('/l/4', lease(hex('http://10.0.0.4:8080/')));
  t.equal(chooseLease([none, identifierOnly, withUrl, other]), withUrl);
  t.equal(chooseLease([none, identifierOnly]), identifierOnly);
  t.equal(chooseLease([none]), none, "the one lease, naming no server: its notes say why");
  t.equal(chooseLease([]), undefined);
});

t.test("a lease as station.conf's keys, with an origin that says where they came from", async (t) => {
  const dir = '/run/systemd/netif/leases';
  t.same(leaseValues(undefined, dir), { origin: `no DHCP lease in ${dir}`, values: {} });
  t.same(leaseValues(parse(NETWORKD_LEASE), dir), { origin: `${FILE} (DHCP option 224)`, values: { server_ip: '169.254.24.1', http_port: '8080' } });
  t.same(leaseValues(parse(lease(undefined)), dir), { origin: `${FILE} (DHCP server identifier)`, values: { server_ip: '169.254.24.1' } }, 'no port: the lower sources keep theirs');
  const nothing: DhcpLease = parse('');
  t.same(leaseValues(nothing, dir), { origin: `${FILE} (names no server)`, values: {} });
});
