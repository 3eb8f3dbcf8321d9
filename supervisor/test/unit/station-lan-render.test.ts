import t, { type Test } from 'tap';
import { TabulaError } from '../../src/domain/errors.js';
import { isStationName, parseLeases, stationLanProblems, type StationLanSpec } from '../../src/domain/station-lan.js';
import { renderStationChrony } from '../../src/render/chrony-stations.js';
import { renderStationDnsmasq } from '../../src/render/dnsmasq-stations.js';

function spec(over: Partial<StationLanSpec> = {}): StationLanSpec {
  return {
    interface: 'enp2s0',
    address: '169.254.24.1',
    prefixLength: 24,
    dhcpRange: { from: '169.254.24.100', to: '169.254.24.199' },
    leaseSeconds: 3600,
    reservations: [
      { mac: '52:54:00:AA:bb:01', address: '169.254.24.10', name: 'kiosk-hall' },
      { mac: '52:54:00:aa:bb:02', address: '169.254.24.11', name: 'kiosk-2' },
    ],
    ntp: true,
    httpPort: 8080,
    ...over,
  };
}

const PATHS = { leaseFile: '/var/lib/tabula/lan/dnsmasq.leases' };

/** The spec with fields the type would not allow, as a file could hold them. */
function loose(over: Record<string, unknown>): StationLanSpec {
  return { ...spec(), ...over } as unknown as StationLanSpec;
}

/** `list` has exactly these problems, in this order. */
function exactly(t: Test, list: string[], patterns: RegExp[], message?: string): void {
  t.match(list, patterns, message ?? 'problems');
  t.equal(list.length, patterns.length, `${message ?? 'problems'}: ${list.join(' / ')}`);
}

function problemsMatching(s: StationLanSpec, re: RegExp): string[] {
  return stationLanProblems(s).filter((p) => re.test(p));
}

t.test('a good spec has no problems; neither does one without reservations, NTP or HTTP', async (t) => {
  t.same(stationLanProblems(spec()), []);
  t.same(stationLanProblems(spec({ reservations: [], ntp: false, httpPort: undefined })), []);
  t.same(stationLanProblems(spec({ ntpUpstream: ['192.0.2.123', 'ntp.example.org'] })), []);
  // The smallest subnet with room for a server and one station.
  t.same(stationLanProblems(spec({ address: '10.0.0.1', prefixLength: 30, dhcpRange: { from: '10.0.0.2', to: '10.0.0.2' }, reservations: [] })), []);
});

t.test('the subnet, the server and the range', async (t) => {
  exactly(t, stationLanProblems(loose({ interface: 'eth0; rm' })), [/interface "eth0; rm" is not an interface name/]);
  exactly(t, stationLanProblems(loose({ interface: 'a-very-long-interface' })), [/not an interface name/]);
  exactly(t, stationLanProblems(spec({ address: '169.254.24.256' })), [/address "169.254.24.256" is not an IPv4 address/]);
  t.match(problemsMatching(spec({ prefixLength: 31 }), /prefix/), [/prefix length 31 is not an integer from 8 to 30/]);
  t.match(problemsMatching(loose({ prefixLength: '24' }), /prefix/), [/prefix length "24"/]);
  exactly(t, stationLanProblems(spec({ address: '169.254.24.0', dhcpRange: { from: '169.254.24.100', to: '169.254.24.199' } })), [/address 169.254.24.0 is the network address of 169.254.24.0\/24/]);
  exactly(t, stationLanProblems(spec({ address: '169.254.24.255' })), [/is the broadcast address/]);

  exactly(t, stationLanProblems(spec({ dhcpRange: { from: '169.254.25.100', to: '169.254.24.199' } })), [/DHCP range from 169.254.25.100 is outside the subnet 169.254.24.0\/24/]);
  exactly(t, stationLanProblems(spec({ dhcpRange: { from: '169.254.24.100', to: '169.254.24.255' } })), [/DHCP range to 169.254.24.255 is the broadcast address/]);
  exactly(t, stationLanProblems(spec({ dhcpRange: { from: '169.254.24.199', to: '169.254.24.100' } })), [/from 169.254.24.199 comes after to 169.254.24.100/]);
  exactly(t, stationLanProblems(spec({ dhcpRange: { from: '169.254.24.1', to: '169.254.24.50' }, reservations: [] })), [/contains the server address 169.254.24.1/]);
  exactly(t, stationLanProblems(loose({ dhcpRange: undefined })), [/DHCP range is missing/]);
  exactly(t, stationLanProblems(loose({ dhcpRange: { from: 'x' } })), [/from "x" is not an IPv4/, /to \(missing\) is not an IPv4/]);

  exactly(t, stationLanProblems(spec({ leaseSeconds: 60 })), [/lease time 60 is not a whole number of seconds from 120/]);
  exactly(t, stationLanProblems(spec({ leaseSeconds: 3600.5 })), [/lease time 3600.5/]);
  exactly(t, stationLanProblems(loose({ ntp: 'yes' })), [/ntp "yes" is not true or false/]);
  exactly(t, stationLanProblems(spec({ httpPort: 0 })), [/HTTP port 0 is not a port number/]);
  exactly(t, stationLanProblems(spec({ httpPort: 65536 })), [/HTTP port 65536/]);
});

t.test('reservations', async (t) => {
  const r = (mac: string, address: string, name: string) => ({ mac, address, name });
  const base = spec().reservations;
  const with_ = (...extra: ReturnType<typeof r>[]) => spec({ reservations: [...base, ...extra] });

  exactly(t, stationLanProblems(with_(r('52:54:00:aa:bb:0g', '169.254.24.12', 'x1'))), [/reservation 3: MAC "52:54:00:aa:bb:0g" is not of the form/]);
  exactly(t, stationLanProblems(with_(r('52-54-00-aa-bb-03', '169.254.24.12', 'x1'))), [/reservation 3: MAC/]);
  exactly(t, stationLanProblems(with_(r('01:00:5e:00:00:01', '169.254.24.12', 'x1'))), [/is a group \(multicast\) address/]);
  exactly(t, stationLanProblems(with_(r('52:54:00:AA:BB:01', '169.254.24.12', 'x1'))), [/reservation 3: MAC 52:54:00:AA:BB:01 is already reserved by reservation 1/]);

  exactly(t, stationLanProblems(with_(r('52:54:00:aa:bb:03', '169.254.24.11', 'x1'))), [/reservation 3: address 169.254.24.11 is already reserved by reservation 2/]);
  exactly(t, stationLanProblems(with_(r('52:54:00:aa:bb:03', '169.254.24.1', 'x1'))), [/reservation 3: address 169.254.24.1 is the server's/]);
  exactly(t, stationLanProblems(with_(r('52:54:00:aa:bb:03', '169.254.24.150', 'x1'))), [/address 169.254.24.150 is inside the DHCP range/]);
  exactly(t, stationLanProblems(with_(r('52:54:00:aa:bb:03', '10.1.1.1', 'x1'))), [/address 10.1.1.1 is outside the subnet 169.254.24.0\/24/]);
  exactly(t, stationLanProblems(with_(r('52:54:00:aa:bb:03', '169.254.24.255', 'x1'))), [/is the broadcast address/]);

  exactly(t, stationLanProblems(with_(r('52:54:00:aa:bb:03', '169.254.24.12', 'KIOSK-HALL'))), [/reservation 3: name KIOSK-HALL is already used by reservation 1/]);
  for (const bad of ['', 'a b', 'kiosk.hall', 'kiosk,1', 'x\ndhcp-range=1.2.3.4', '-lead', 'trail-', '3600', '10m', 'infinite', 'IGNORE', 'a'.repeat(33), 'käse']) {
    exactly(t, stationLanProblems(with_(r('52:54:00:aa:bb:03', '169.254.24.12', bad))), [/reservation 3: name .* is not 1–32 letters/], `name ${JSON.stringify(bad)}`);
  }
  for (const good of ['a', 'K1', 'kiosk-12', '12a', 'a'.repeat(32), '2nd-floor']) t.ok(isStationName(good), good);

  exactly(t, stationLanProblems(loose({ reservations: 'none' })), [/reservations is not a list/]);
  exactly(t, stationLanProblems(loose({ reservations: [null] })), [/reservation 1 is not a table/]);
});

t.test('NTP upstream servers', async (t) => {
  exactly(t, stationLanProblems(spec({ ntpUpstream: ['pool.ntp.org', 'POOL.ntp.org'] })), [/NTP upstream POOL.ntp.org is listed twice/]);
  for (const bad of ['a b', 'x\nallow all', '1.2.3.4.5', '-x', 'host_name', '']) {
    exactly(t, stationLanProblems(spec({ ntpUpstream: [bad] })), [/NTP upstream .* is not an IPv4 address or a host name/], JSON.stringify(bad));
  }
  exactly(t, stationLanProblems(spec({ ntpUpstream: Array.from({ length: 9 }, (_, i) => `ntp${i}.example.org`) })), [/more than 8/]);
});

t.test('dnsmasq: DHCP only, on the station interface, every line accounted for', async (t) => {
  t.equal(
    renderStationDnsmasq(spec(), PATHS),
    [
      '# Written by the Tabula supervisor for the station LAN; changes here are overwritten.',
      'port=0',
      'interface=enp2s0',
      'except-interface=lo',
      'bind-interfaces',
      'no-resolv',
      'no-hosts',
      'dhcp-range=169.254.24.100,169.254.24.199,255.255.255.0,3600',
      'dhcp-authoritative',
      'dhcp-leasefile=/var/lib/tabula/lan/dnsmasq.leases',
      'pid-file=',
      'dhcp-option=option:router',
      'dhcp-option=option:dns-server',
      'dhcp-option=option:ntp-server,169.254.24.1',
      'dhcp-option-force=224,"http://169.254.24.1:8080/"',
      'dhcp-host=52:54:00:aa:bb:01,169.254.24.10,kiosk-hall',
      'dhcp-host=52:54:00:aa:bb:02,169.254.24.11,kiosk-2',
      '',
    ].join('\n'),
  );
  const plain = renderStationDnsmasq(spec({ ntp: false, httpPort: undefined, reservations: [], prefixLength: 16, dhcpRange: { from: '169.254.30.1', to: '169.254.31.254' } }), {
    ...PATHS,
    pidFile: '/run/tabula/dnsmasq.pid',
  });
  t.notMatch(plain, /ntp-server|224|dhcp-host/);
  t.match(plain, /^dhcp-range=169\.254\.30\.1,169\.254\.31\.254,255\.255\.0\.0,3600$/m);
  t.match(plain, /^pid-file=\/run\/tabula\/dnsmasq\.pid$/m);
  t.notMatch(plain, /log-dhcp|dhcp-script|^server=|^address=/m, 'no DHCP script, no verbose logging, no DNS');
  t.equal(renderStationDnsmasq(spec(), PATHS), renderStationDnsmasq(spec(), PATHS), 'the same spec renders the same text');
});

t.test('dnsmasq: nothing in a spec or a path can add a line or an option', async (t) => {
  const refused = (s: StationLanSpec, paths = PATHS) => {
    try {
      renderStationDnsmasq(s, paths);
      return undefined;
    } catch (e) {
      return e;
    }
  };
  const res = (mac: string, address: string, name: string) => spec({ reservations: [{ mac, address, name }] });
  const cases: Array<[string, StationLanSpec, typeof PATHS?]> = [
    ['name with a newline', res('52:54:00:aa:bb:01', '169.254.24.10', 'a\ndhcp-range=10.0.0.1,10.0.0.9')],
    ['name with a comma', res('52:54:00:aa:bb:01', '169.254.24.10', 'a,infinite')],
    ['name read as a lease time', res('52:54:00:aa:bb:01', '169.254.24.10', '600')],
    ['name that is a keyword', res('52:54:00:aa:bb:01', '169.254.24.10', 'ignore')],
    ['MAC with more fields', res('52:54:00:aa:bb:01,set:x', '169.254.24.10', 'a')],
    ['MAC as a client id', res('id:00:01:02:03:04:05', '169.254.24.10', 'a')],
    ['address with more', res('52:54:00:aa:bb:01', '169.254.24.10\nport=53', 'a')],
    ['interface with more', spec({ interface: 'eth0\nport=53' })],
    ['server address', spec({ address: '169.254.24.1,6' })],
    ['range', spec({ dhcpRange: { from: '169.254.24.100', to: '169.254.24.199,static' } })],
    ['lease time', spec({ leaseSeconds: Number.NaN })],
    ['HTTP port', spec({ httpPort: 80.5 })],
    ['lease file with a space', spec(), { leaseFile: '/tmp/a b' }],
    ['lease file with a newline', spec(), { leaseFile: '/tmp/a\nport=53' }],
    ['lease file with a quote', spec(), { leaseFile: '/tmp/"a' }],
    ['relative lease file', spec(), { leaseFile: 'leases' }],
  ];
  for (const [what, s, paths] of cases) {
    const e = refused(s, paths);
    t.ok(e instanceof TabulaError && e.code === 'config-invalid', what);
  }
  // A MAC of the right shape but not hex is dnsmasq --test's to refuse: it cannot add anything.
  t.match(renderStationDnsmasq(res('zz:54:00:aa:bb:01', '169.254.24.10', 'a'), PATHS), /^dhcp-host=zz:54:00:aa:bb:01,169\.254\.24\.10,a$/m);
});

t.test('chrony: serves the subnet from the server address only, never the clock', async (t) => {
  t.equal(
    renderStationChrony(spec(), { pidFile: '/run/tabula/lan/chronyd.pid' }),
    [
      '# Written by the Tabula supervisor for the station LAN; changes here are overwritten.',
      'bindaddress 169.254.24.1',
      'binddevice enp2s0',
      'port 123',
      'cmdport 0',
      'bindcmdaddress /',
      'pidfile /run/tabula/lan/chronyd.pid',
      'allow 169.254.24.0/24',
      'local stratum 8',
      '',
    ].join('\n'),
  );
  const more = renderStationChrony(spec({ address: '10.20.30.40', prefixLength: 20, ntpUpstream: ['192.0.2.1', 'ntp.example.org'] }), {
    pidFile: '/p/chronyd.pid',
    driftFile: '/var/lib/tabula/chrony.drift',
    socketDir: '/run/tabula/chrony/',
  });
  t.match(more, /^allow 10\.20\.16\.0\/20$/m);
  t.match(more, /^bindcmdaddress \/run\/tabula\/chrony\/chronyd\.sock$/m);
  t.match(more, /^driftfile \/var\/lib\/tabula\/chrony\.drift$/m);
  t.match(more, /^server 192\.0\.2\.1 iburst\nserver ntp\.example\.org iburst\n$/m);
  t.notMatch(more, /makestep|rtcsync|rtcfile|^pool /m);

  for (const [what, s, paths] of [
    ['interface', spec({ interface: 'eth0 extra' }), { pidFile: '/p' }],
    ['upstream', spec({ ntpUpstream: ['ntp.example.org\nallow all'] }), { pidFile: '/p' }],
    ['upstream option', spec({ ntpUpstream: ['a iburst minpoll 0'] }), { pidFile: '/p' }],
    ['server address', spec({ address: 'all' }), { pidFile: '/p' }],
    ['PID file', spec(), { pidFile: '/p q' }],
    ['socket dir', spec(), { pidFile: '/p', socketDir: 'relative' }],
  ] as const) {
    t.throws(() => renderStationChrony(s, paths), { code: 'config-invalid' }, what);
  }
});

t.test('dnsmasq lease file', async (t) => {
  const text = [
    '1795395494 72:6D:5F:A0:19:C7 169.254.24.133 kiosk-b 01:72:6d:5f:a0:19:c7',
    '1795395490 f2:a9:4d:9c:f9:12 169.254.24.20 station-1 01:f2:a9:4d:9c:f9:12',
    '0 52:54:00:00:00:01 169.254.24.9 * *',
    '1795395490 52:54:00:00:00:02 169.254.24.8 *',
    'duid 00:01:00:01:2c:5e:8c:2e:52:54:00:12:34:56',
    '1795395490 1234567 fd00::5 v6host 00:01:00:01',
    '1795395490 06-52:54:00:00:00:03 169.254.24.7 tokenring *',
    '1795395490 52:54:00:00:00:04 169.254.24.6 extra * field',
    '17953954 52:54:00:00:00:05 169.254.24.300 bad *',
    'garbage',
    '',
    '   ',
    '1795395490 52:54:00:00:00:06',
  ].join('\n');
  t.same(parseLeases(text), [
    { mac: '52:54:00:00:00:02', address: '169.254.24.8', expiresAt: 1795395490000 },
    { mac: '52:54:00:00:00:01', address: '169.254.24.9', expiresAt: Number.POSITIVE_INFINITY },
    { mac: 'f2:a9:4d:9c:f9:12', address: '169.254.24.20', name: 'station-1', expiresAt: 1795395490000 },
    { mac: '72:6d:5f:a0:19:c7', address: '169.254.24.133', name: 'kiosk-b', expiresAt: 1795395494000 },
  ]);
  t.same(parseLeases(''), []);
});
