// The station firewall in a real kernel: a station LAN of three namespaces
// (the server .1, another host .2, the station .50, on a bridge inside the
// server's namespace), the rendered ruleset loaded in the station's through
// the real adapter, and every flow tried for real. Each flow that must be
// blocked is first shown to work without the firewall, so "blocked" means the
// firewall blocked it, not that nothing was there.
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { applyNftRuleset } from '../../src/adapters/nft-apply.js';
import { renderStationFirewall, renderStationLockdown, STATION_TABLE, type FirewallInput } from '../../src/render/station-firewall.js';
import { run } from '../../../../supervisor/test/helpers/env.js';
import { arrives, BLOCKED, exactly, NetnsLan, OTHER_IP, PROBE_MS, SERVER_IP, STATION_IP } from '../helpers/netns-lan.js';

const STATION = 'tabula-it-fw-station';
const SERVER = 'tabula-it-fw-server';
const OTHER = 'tabula-it-fw-other';
const SERVER_IP6 = 'fd24::1';
const STATION_IP6 = 'fd24::50';
const CFG: FirewallInput = { serverAddress: SERVER_IP, signalPort: 5905, spicePort: 5906, httpPort: 80 };

// udhcpc's script: puts the leased address on the link and says which event it was.
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr replace "$ip/$mask" dev "$interface"
    echo "event=$1 ip=$ip serverid=\${serverid:-}"
    ;;
  *) echo "event=$1" ;;
esac
`;

const dir = await mkdtemp(join(tmpdir(), 'tabula-it-fw-'));
const lan = new NetnsLan({
  dir,
  prefix: 'tabula-it-fw',
  server: { ns: SERVER, ip4: SERVER_IP, ip6: SERVER_IP6 },
  hosts: [
    { ns: STATION, port: 'p-station', ip4: STATION_IP, ip6: STATION_IP6 },
    { ns: OTHER, port: 'p-other', ip4: OTHER_IP },
  ],
});
t.teardown(() => lan.remove());
const start = lan.start.bind(lan);
const tcp = lan.tcp.bind(lan);
const udp = lan.udp.bind(lan);
const udpSend = lan.udpSend.bind(lan);
const ping = lan.ping.bind(lan);
const counters = () => lan.counters(STATION);
const forgetConnections = () => lan.forgetConnections(STATION);
const probeFile = lan.probeFile;

const applyInStation = (ruleset: string) => applyNftRuleset(ruleset, { command: ['ip', 'netns', 'exec', STATION, 'nft'] });

// Services on every host: the server's own (and two it must not offer the station), a
// look-alike on the other host, listeners on the station for the inbound tests. A setup
// that fails half-way removes what it made before the error ends the file.
const { server, other, station } = await lan.makeWith(async () => ({
  server: await lan.serve(SERVER, 'tcp:80', 'tcp:5905', 'tcp:5906', 'tcp:22', 'tcp:8080', 'udp:53', 'udpq:67'),
  other: await lan.serve(OTHER, 'tcp:5905', 'udp:123', 'udpq:67'),
  station: await lan.serve(STATION, 'tcp:5900', 'tcp:22', 'udpq:68'),
}));

t.test('without the firewall, every flow the firewall must stop gets through', async (t) => {
  const [s22, s8080, o5905, s53, o123, in5900, in22, v6out, v6in] = await Promise.all([
    tcp(STATION, SERVER_IP, 22),
    tcp(STATION, SERVER_IP, 8080),
    tcp(STATION, OTHER_IP, 5905),
    udp(STATION, SERVER_IP, 53),
    udp(STATION, OTHER_IP, 123),
    tcp(SERVER, STATION_IP, 5900),
    tcp(SERVER, STATION_IP, 22),
    tcp(STATION, SERVER_IP6, 5905),
    tcp(SERVER, STATION_IP6, 5900),
  ]);
  t.equal(s22, 'open', 'station → server TCP 22');
  t.equal(s8080, 'open', 'station → server TCP 8080');
  t.equal(o5905, 'open', 'station → other host TCP 5905');
  t.equal(s53, 'answered', 'station → server UDP 53');
  t.equal(o123, 'answered', 'station → other host UDP 123');
  t.equal(in5900, 'open', 'server → station TCP 5900');
  t.equal(in22, 'open', 'server → station TCP 22');
  t.equal(v6out, 'open', 'station → server over IPv6');
  t.equal(v6in, 'open', 'server → station over IPv6');
  t.ok(await ping(SERVER, STATION_IP), 'the server can ping the station');
  t.equal(await udpSend(STATION, OTHER_IP, 67, STATION_IP, 68, 'dhcp-to-other-0'), 'sent');
  t.ok(await arrives(other.lines, /udp 67 .* dhcp-to-other-0/), 'a DHCP-shaped datagram reaches the other host');
  t.equal(await udpSend(SERVER, STATION_IP, 68, SERVER_IP, 1067, 'not-dhcp-0'), 'sent');
  t.ok(await arrives(station.lines, /udp 68 .* not-dhcp-0/), 'port 68 from a port other than 67 reaches the station');
  // What the tests above tracked must not pass for an answer once the firewall is up.
  await forgetConnections();
});

t.test('the firewall loads through the adapter, and again (idempotent)', async (t) => {
  await applyInStation(renderStationFirewall(CFG));
  const first = await counters();
  await applyInStation(renderStationFirewall(CFG));
  const second = await counters();
  t.same(Object.keys(second), Object.keys(first), 'the same rules after the second load, not twice as many');
  t.ok(Object.keys(first).length >= 15, `rules are there (${Object.keys(first).length})`);
  const { stdout } = await run('ip', ['netns', 'exec', STATION, 'nft', 'list', 'tables']);
  t.same(stdout.trim().split('\n'), [`table inet ${STATION_TABLE}`], 'one table in the station');
});

t.test('DHCP replies come in unasked; nothing else does', async (t) => {
  // Before the station sent anything to port 67: no conntrack entry can let these in.
  t.equal(await udpSend(SERVER, STATION_IP, 68, SERVER_IP, 67, 'offer-unicast'), 'sent');
  t.equal(await udpSend(SERVER, '255.255.255.255', 68, SERVER_IP, 67, 'offer-broadcast'), 'sent');
  t.equal(await udpSend(SERVER, STATION_IP, 68, SERVER_IP, 1067, 'not-dhcp-1'), 'sent');
  t.ok(await arrives(station.lines, /udp 68 from 169\.254\.24\.1:67 offer-unicast/), 'a unicast reply from port 67 to port 68');
  t.ok(await arrives(station.lines, /udp 68 from 169\.254\.24\.1:67 offer-broadcast/), 'a broadcast reply');
  t.notOk(await arrives(station.lines, /not-dhcp-1/, PROBE_MS), 'port 68 from another source port: dropped');
  t.ok((await counters())['input/dhcp-reply']! >= 2, 'counted by the dhcp-reply rule');
});

t.test('the station reaches the server on its services', async (t) => {
  const [signal, spice, http] = await Promise.all([tcp(STATION, SERVER_IP, 5905), tcp(STATION, SERVER_IP, 5906), tcp(STATION, SERVER_IP, 80)]);
  t.equal(signal, 'open', 'TCP 5905 (signal), and the echo came back');
  t.equal(spice, 'open', 'TCP 5906 (spice)');
  t.equal(http, 'open', 'TCP 80 (http)');
  // Nothing listens on 123 yet: the ICMP port-unreachable is related to the flow, and let in.
  t.equal(await udp(STATION, SERVER_IP, 123), 'refused', 'UDP 123 with no NTP server: the ICMP error comes back (related)');
  const ntp = await start(SERVER, ['node', probeFile, 'serve', 'udp:123']);
  t.equal(await udp(STATION, SERVER_IP, 123), 'answered', 'UDP 123 (NTP) is answered');
  t.ok(await arrives(ntp.lines, /udp 123 from 169\.254\.24\.50/), 'the server saw the station');
  ntp.proc.kill('SIGKILL');
  const c = await counters();
  for (const rule of ['signal', 'spice', 'http', 'ntp']) t.ok(c[`output/${rule}`]! >= 1, `counted by the ${rule} rule`);
});

t.test('DHCP through the kernel: to the server and to broadcast, not to another host', async (t) => {
  // From the station's address: a socket bound to 0.0.0.0 has no route to 255.255.255.255 here.
  t.equal(await udpSend(STATION, SERVER_IP, 67, STATION_IP, 68, 'renew-unicast'), 'sent');
  t.equal(await udpSend(STATION, '255.255.255.255', 67, STATION_IP, 68, 'rebind-broadcast'), 'sent');
  t.ok(await arrives(server.lines, /udp 67 from 169\.254\.24\.50:68 renew-unicast/), 'unicast 68 → server:67 arrives');
  t.ok(await arrives(server.lines, /udp 67 from 169\.254\.24\.50:68 rebind-broadcast/), 'broadcast 68 → 67 arrives');
  t.match(await udpSend(STATION, OTHER_IP, 67, STATION_IP, 68, 'dhcp-to-other-1'), BLOCKED, '68 → other host:67 is refused');
  t.notOk(await arrives(other.lines, /dhcp-to-other-1/, PROBE_MS), 'and never reaches it');
  t.match(await udpSend(STATION, SERVER_IP, 67, STATION_IP, 1068, 'not-dhcp-2'), BLOCKED, 'port 67 from another source port is refused');
});

t.test('everything else from the station is dropped', async (t) => {
  const reachedBefore = server.lines.filter((l) => /^tcp (22|8080) /.test(l)).length;
  const [s22, s8080, o5905, s53, o123, s5907] = await Promise.all([
    tcp(STATION, SERVER_IP, 22),
    tcp(STATION, SERVER_IP, 8080),
    tcp(STATION, OTHER_IP, 5905),
    udp(STATION, SERVER_IP, 53),
    udp(STATION, OTHER_IP, 123),
    tcp(STATION, SERVER_IP, 5907),
  ]);
  t.match(s22, BLOCKED, `server TCP 22 (${s22})`);
  t.match(s8080, BLOCKED, `server TCP 8080 (${s8080})`);
  t.match(o5905, BLOCKED, `other host TCP 5905 (${o5905})`);
  t.match(s53, BLOCKED, `server UDP 53 (${s53})`);
  t.match(o123, BLOCKED, `other host UDP 123 (${o123})`);
  t.match(s5907, BLOCKED, `server TCP 5907, next to the Spice port (${s5907})`);
  t.equal(server.lines.filter((l) => /^tcp (22|8080) /.test(l)).length, reachedBefore, 'no connection reached those services');
  t.ok((await counters())['output/refused']! >= 6, 'counted by the final drop');
});

t.test('nobody connects to the station', async (t) => {
  const [in5900, in22, other5900] = await Promise.all([tcp(SERVER, STATION_IP, 5900), tcp(SERVER, STATION_IP, 22), tcp(OTHER, STATION_IP, 5900)]);
  t.equal(in5900, 'timeout', 'server → station TCP 5900');
  t.equal(in22, 'timeout', 'server → station TCP 22');
  t.equal(other5900, 'timeout', 'other host → station TCP 5900');
  t.notOk(await ping(SERVER, STATION_IP), 'no answer to ping');
  t.ok((await counters())['input/refused']! >= 3, 'counted by the final drop');
});

t.test('IPv6: loopback only', async (t) => {
  const [out6, in6, lo6, lo4] = await Promise.all([tcp(STATION, SERVER_IP6, 5905), tcp(SERVER, STATION_IP6, 5900), tcp(STATION, '::1', 5900), tcp(STATION, '127.0.0.1', 5900)]);
  t.match(out6, BLOCKED, `station → server [${SERVER_IP6}]:5905, a port allowed over IPv4 (${out6})`);
  t.equal(in6, 'timeout', 'server → station over IPv6');
  t.equal(lo6, 'open', 'the station to itself on ::1');
  t.equal(lo4, 'open', 'and on 127.0.0.1');
  const c = await counters();
  t.ok(c['output/ipv6']! >= 1 && c['input/ipv6']! >= 1, 'counted by the ipv6 rules');
});

t.test('a busybox DHCP client gets its lease and renews it through the firewall', async (t) => {
  const script = join(dir, 'udhcpc.sh');
  await writeFile(script, UDHCPC_SCRIPT);
  await chmod(script, 0o755);
  const [link] = JSON.parse((await run('ip', ['-n', STATION, '-j', 'link', 'show', 'eth0'])).stdout) as Array<{ address: string }>;
  const dnsmasq = await start(
    SERVER,
    [
      'dnsmasq',
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      '--interface=br0',
      '--bind-interfaces',
      '--dhcp-authoritative',
      '--no-ping',
      '--log-dhcp',
      '--log-facility=-',
      `--dhcp-range=169.254.24.100,169.254.24.150,255.255.255.0,2m`,
      // The station keeps the address the other tests use.
      `--dhcp-host=${link!.address},${STATION_IP}`,
      `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    ],
    false,
  );
  // Stopped at the end whatever happens: a client left running would go on changing the station.
  t.teardown(() => void dnsmasq.proc.kill('SIGKILL'));
  if (!t.ok(await arrives(dnsmasq.lines, /DHCP, IP range/, 10_000, dnsmasq.proc), `dnsmasq serves the LAN (${dnsmasq.lines.join(' | ')})`)) return;
  const client = await start(STATION, ['busybox', 'udhcpc', '-i', 'eth0', '-f', '-s', script, '-t', '5', '-T', '1', '-A', '1'], false);
  t.teardown(() => void client.proc.kill('SIGKILL'));
  t.ok(await arrives(client.lines, exactly(`event=bound ip=${STATION_IP} serverid=${SERVER_IP}`), 20_000, client.proc), `bound to the reserved address (${client.lines.join(' | ')})`);
  // SIGUSR1: renew now. busybox sends the renewal unicast through a kernel socket, the
  // way every DHCP client renews: that is the one DHCP flow the firewall decides on.
  // The ACK just received left a conntrack entry that would pass the renewal as its
  // answer; on a kiosk it has long expired when the renewal comes (half the lease).
  await forgetConnections();
  const before = (await counters())['output/dhcp']!;
  client.proc.kill('SIGUSR1');
  t.ok(await arrives(client.lines, exactly(`event=renew ip=${STATION_IP} serverid=${SERVER_IP}`), 10_000, client.proc), 'renewed');
  t.ok((await counters())['output/dhcp']! > before, 'the renewal went out through the dhcp rule');
  t.ok(dnsmasq.lines.filter((l) => /DHCPACK\(br0\) 169\.254\.24\.50/.test(l)).length >= 2, 'dnsmasq acked twice');
});

t.test('a new server address replaces the old rules', async (t) => {
  await applyInStation(renderStationFirewall({ ...CFG, serverAddress: OTHER_IP }));
  const { stdout } = await run('ip', ['netns', 'exec', STATION, 'nft', 'list', 'table', 'inet', STATION_TABLE]);
  t.notMatch(stdout, /169\.254\.24\.1\b/, 'the old address is gone from the rules');
  const [oldServer, newServer] = await Promise.all([tcp(STATION, SERVER_IP, 5905), tcp(STATION, OTHER_IP, 5905)]);
  t.match(oldServer, BLOCKED, `the old server is out of reach (${oldServer})`);
  t.equal(newServer, 'open', 'the new one is reached');
});

t.test('the lockdown cuts the station off but for loopback', async (t) => {
  await applyInStation(renderStationLockdown('test'));
  const [signal, lo] = await Promise.all([tcp(STATION, OTHER_IP, 5905), tcp(STATION, '127.0.0.1', 5900)]);
  t.match(signal, BLOCKED, `the server's signal port (${signal})`);
  t.equal(lo, 'open', 'loopback still works');
  await applyInStation(renderStationFirewall(CFG));
  t.equal(await tcp(STATION, SERVER_IP, 5905), 'open', 'the normal ruleset replaces the lockdown');
});

t.test('a ruleset nft refuses is reported, and the loaded one stays', async (t) => {
  await t.rejects(applyInStation('table inet tabula_station {\n  chain input { bogus }\n}\n'), { code: 'firewall-failed', message: /nft refused the station firewall: .*Error/ });
  t.equal(await tcp(STATION, SERVER_IP, 5905), 'open', 'the rules in force did not change');
  t.match(await tcp(STATION, SERVER_IP, 22), BLOCKED);
});
