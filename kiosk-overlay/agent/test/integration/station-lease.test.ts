// The station's settings from its DHCP lease, with real pieces: the server's
// dnsmasq with the config the supervisor renders (option 224 = its HTTP
// endpoint), its client.conf over HTTP (non-default signal and Spice ports),
// the real systemd-networkd in the station's namespace with the overlay's
// .network file, writing the real lease file, and the real firewall program
// run there as the units run it. Before the lease the station may speak DHCP
// only; after it, exactly the server's services (the ports from client.conf);
// the card's file wins over the lease; and when the lease goes, DHCP only
// again. Every flow said to be blocked is first shown to work without the
// firewall.
//
// networkd runs on its own here (no systemd as PID 1), in a private mount
// namespace that gives it its own /run/systemd and the overlay's .network
// file, hides the system bus (it must not register on the host's) and makes
// /sys read-only: with a writable /sys networkd waits for udev to announce
// each link, and there is no udev in a test namespace.
import { chmod, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseNetworkdLease } from '../../src/config/dhcp-lease.js';
import { STATION_TABLE } from '../../src/render/station-firewall.js';
import { renderStationDnsmasq } from '../../../../supervisor/src/render/dnsmasq-stations.js';
import { renderClientConf } from '../../../../supervisor/src/render/station-config.js';
import { REPO, run, waitFor } from '../../../../supervisor/test/helpers/env.js';
import { arrives, BLOCKED, NetnsLan, OTHER_IP, SERVER_IP, STATION_IP, type Started } from '../helpers/netns-lan.js';

const STATION = 'tabula-it-lease-station';
const SERVER = 'tabula-it-lease-server';
const OTHER = 'tabula-it-lease-other';
/** The server's ports, none of them a default, so a rule that allows one was built from the right source. */
const HTTP = 8080;
const SIGNAL = 6905;
const SPICE = 6906;
const STATION_URL = `http://${SERVER_IP}:${HTTP}/`;

const CLI = join(REPO, 'kiosk-overlay/agent/dist/cli/station-firewall.js');
const DIST = join(REPO, 'kiosk-overlay/agent/dist');
/** The image's own station.conf, as shipped: it must leave the server to the lease. */
const SHIPPED_CONF = join(REPO, 'kiosk-overlay/rootfs/etc/tabula/station.conf');
const SHIPPED_NETWORK = join(REPO, 'kiosk-overlay/rootfs/etc/systemd/network/20-tabula-wired.network');

const dir = await mkdtemp(join(tmpdir(), 'tabula-it-lease-'));
const leases = join(dir, 'leases');
const networkDir = join(dir, 'network');
const card = join(dir, 'card', 'tabula', 'station.conf');

const lan = new NetnsLan({
  dir,
  prefix: 'tabula-it-lease',
  server: { ns: SERVER, ip4: SERVER_IP },
  hosts: [
    // The station's address is its DHCP reservation too: the probes before the lease need one.
    { ns: STATION, port: 'p-station', ip4: STATION_IP },
    { ns: OTHER, port: 'p-other', ip4: OTHER_IP },
  ],
});
t.teardown(() => lan.remove());

// The server's station endpoint: GET /client.conf, each request logged with its sender.
const HTTP_SERVER = String.raw`
import http from 'node:http';
import { readFileSync } from 'node:fs';
const [port, file] = process.argv.slice(2);
http.createServer((req, res) => {
  process.stdout.write('GET ' + req.url + ' from ' + req.socket.remoteAddress + '\n');
  if (req.url === '/client.conf') res.end(readFileSync(file));
  else { res.statusCode = 404; res.end(); }
}).listen(Number(port), '0.0.0.0', () => process.stdout.write('ready\n'));
`;

// networkd on its own in the station's namespace (see the top of this file).
const NETWORKD = `#!/bin/sh
set -e
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/netif/leases /run/systemd/netif/links /run/systemd/netif/lldp
mount --bind "${leases}" /run/systemd/netif/leases
chown -R systemd-network:systemd-network /run/systemd/netif
mount --bind "${networkDir}" /etc/systemd/network
if [ -d /run/dbus ]; then mount -t tmpfs tmpfs /run/dbus; fi
mount -o remount,ro /sys
# Its own host name too: the lease's (option 12) must never reach the host's.
SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=info exec unshare --uts /lib/systemd/systemd-networkd
`;

// What the agent's settings are, read as main.ts reads them, printed as JSON.
const AGENT_SETTINGS = `
const { FileSettingsSource } = await import('${DIST}/adapters/station-conf-file.js');
const { StationSettings } = await import('${DIST}/app/station-settings.js');
const { JournalLogger } = await import('${DIST}/adapters/journal-logger.js');
const [config, card, leaseDir] = process.argv.slice(2);
const logger = new JournalLogger();
const settings = await StationSettings.load(new FileSettingsSource({ config, card, leaseDir }, logger), logger);
process.stdout.write(JSON.stringify(settings.current) + '\\n');
`;

/** The firewall program in the station, as the units run it but for the paths; its exit code and journal lines. */
async function firewall(...args: string[]): Promise<{ code: number; log: string }> {
  const argv = ['netns', 'exec', STATION, process.execPath, CLI, '--apply', '--config', SHIPPED_CONF, '--card-config', card, '--lease-dir', leases, ...args];
  return run('ip', argv, { timeout: 60_000, env: { ...process.env, TMPDIR: dir } }).then(
    (r) => ({ code: 0, log: r.stderr }),
    (e: { code?: number; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, log: e.stderr ?? '' }),
  );
}

/** The rules of the station's table: `chain/comment` of each rule that accepts. */
async function acceptRules(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'exec', STATION, 'nft', 'list', 'table', 'inet', STATION_TABLE]);
  let chain = '';
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    chain = /^\s*chain (\w+)/.exec(line)?.[1] ?? chain;
    const m = /^\s*(.*\baccept) comment "([^"]+)"/.exec(line);
    if (m && m[2] !== 'loopback' && m[2] !== 'established') out.push(`${chain}/${m[2]}: ${m[1]!.replace(/ packets \d+ bytes \d+/, '')}`);
  }
  return out;
}

/** The station's probes of everything the firewall decides on: the server's services and two it must not offer, and the other host. */
async function reachable(): Promise<Record<string, string>> {
  const [http, signal, spice, defaultSignal, ssh, other] = await Promise.all([
    lan.http(STATION, `${STATION_URL}client.conf`),
    lan.tcp(STATION, SERVER_IP, SIGNAL),
    lan.tcp(STATION, SERVER_IP, SPICE),
    lan.tcp(STATION, SERVER_IP, 5905),
    lan.tcp(STATION, SERVER_IP, 22),
    lan.tcp(STATION, OTHER_IP, 5905),
  ]);
  const blocked = (s: string) => (BLOCKED.test(s) ? 'blocked' : s);
  return { http: blocked(http), signal: blocked(signal), spice: blocked(spice), defaultSignal: blocked(defaultSignal), ssh: blocked(ssh), other: blocked(other) };
}

const world = await lan.makeWith(async () => {
  await mkdir(leases);
  await mkdir(networkDir);
  await writeFile(join(networkDir, '20-tabula-wired.network'), await readFile(SHIPPED_NETWORK));
  await writeFile(join(dir, 'networkd.sh'), NETWORKD);
  await chmod(join(dir, 'networkd.sh'), 0o755);
  await writeFile(join(dir, 'http.mjs'), HTTP_SERVER);
  await writeFile(join(dir, 'settings.mjs'), AGENT_SETTINGS);
  await writeFile(
    join(dir, 'client.conf'),
    renderClientConf({ serverAddress: SERVER_IP, signalPort: SIGNAL, spicePort: SPICE, slideshowUrl: `${STATION_URL}slideshow/`, pools: ['desktop'] }),
  );
  const [link] = JSON.parse((await run('ip', ['-n', STATION, '-j', 'link', 'show', 'eth0'])).stdout) as Array<{ address: string; ifindex: number }>;
  // The server's dnsmasq, configured as the supervisor configures it.
  const dnsmasqConf = renderStationDnsmasq(
    {
      interface: 'br0',
      address: SERVER_IP,
      prefixLength: 24,
      dhcpRange: { from: '169.254.24.100', to: '169.254.24.150' },
      leaseSeconds: 120,
      reservations: [{ mac: link!.address, address: STATION_IP, name: 'kiosk-lease' }],
      ntp: true,
      httpPort: HTTP,
    },
    { leaseFile: join(dir, 'dnsmasq.leases'), pidFile: join(dir, 'dnsmasq.pid') },
  );
  await writeFile(join(dir, 'dnsmasq.conf'), dnsmasqConf);
  const dnsmasq = await lan.start(SERVER, ['dnsmasq', '--no-daemon', `--conf-file=${join(dir, 'dnsmasq.conf')}`, '--log-facility=-', '--log-dhcp'], false);
  if (!(await arrives(dnsmasq.lines, /DHCP, IP range/, 10_000, dnsmasq.proc))) throw new Error(`dnsmasq does not serve the LAN: ${dnsmasq.lines.join(' | ')}`);
  return {
    ifindex: link!.ifindex,
    dnsmasqConf,
    dnsmasq,
    http: await lan.start(SERVER, ['node', join(dir, 'http.mjs'), String(HTTP), join(dir, 'client.conf')]),
    server: await lan.serve(SERVER, `tcp:${SIGNAL}`, `tcp:${SPICE}`, 'tcp:5905', 'tcp:22'),
    other: await lan.serve(OTHER, 'tcp:5905'),
  };
});

let networkd: Started | undefined;

t.test('the pieces: dnsmasq as the supervisor renders it, the shipped files', async (t) => {
  t.match(world.dnsmasqConf, `dhcp-option-force=224,"${STATION_URL}"\n`, 'the server sends option 224');
  const shipped = await readFile(SHIPPED_CONF, 'utf8');
  t.same(
    shipped.split('\n').filter((l) => /^\s*(server_ip|http_port|vdi_signal_port|vdi_spice_port)\s*=/.test(l)),
    [],
    'the image\'s station.conf sets nothing the lease or the server give',
  );
  t.match(await readFile(SHIPPED_NETWORK, 'utf8'), /^RequestOptions=224$/m, 'the .network file asks for option 224');
});

t.test('without the firewall, every flow it decides on gets through', async (t) => {
  t.same(await reachable(), { http: 'open', signal: 'open', spice: 'open', defaultSignal: 'open', ssh: 'open', other: 'open' });
});

t.test('before any lease: DHCP only, and why, naming every source looked at', async (t) => {
  const { code, log } = await firewall();
  t.equal(code, 0, `no server yet is no failure (${log.trim()})`);
  t.match(log, `<5>event=firewall-dhcp-only detail="no server known: no DHCP lease names one and server_ip is not set (looked at: no DHCP lease in ${leases}; ${card} (absent); ${SHIPPED_CONF})"`);
  t.same(await acceptRules(), [
    'input/dhcp-reply: udp sport 67 udp dport 68 counter accept',
    'output/dhcp: ip daddr 255.255.255.255 udp sport 68 udp dport 67 counter accept',
  ]);
  await lan.forgetConnections(STATION);
  t.same(await reachable(), { http: 'blocked', signal: 'blocked', spice: 'blocked', defaultSignal: 'blocked', ssh: 'blocked', other: 'blocked' });
});

t.test("networkd gets its lease through the DHCP-only rules, and writes option 224 in it", async (t) => {
  networkd = await lan.start(STATION, [join(dir, 'networkd.sh')], false);
  const file = join(leases, String(world.ifindex));
  const text = await waitFor(
    'the lease',
    async () => {
      if (networkd!.proc.exitCode !== null) throw new Error(`networkd exited: ${networkd!.lines.join(' | ')}`);
      const names = await readdir(leases);
      return names.includes(String(world.ifindex)) ? readFile(file, 'utf8') : undefined;
    },
    30_000,
    200,
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}\nnetworkd: ${networkd!.lines.slice(-30).join('\n')}`);
  });
  t.match(text, /^# This is private data\. Do not parse\.$/m, "networkd's lease file, named by the interface index");
  t.match(text, `\nSERVER_ADDRESS=${SERVER_IP}\n`);
  t.match(text, `\nOPTION_224=${Buffer.from(STATION_URL).toString('hex')}\n`, 'option 224 as lower-case hex of the URL');
  t.same(parseNetworkdLease(file, text), { origin: file, serverAddress: SERVER_IP, httpPort: HTTP, serverFrom: 'option-224', notes: [] }, 'and the station reads it');
  t.ok(await arrives(networkd!.lines, /DHCPv4 address 169\.254\.24\.50\/24.* acquired from 169\.254\.24\.1/), 'networkd says it got the reserved address');
});

t.test('the lease came: the server of option 224, the ports of its client.conf, nothing else', async (t) => {
  const served = world.http.lines.length;
  const { code, log } = await firewall();
  t.equal(code, 0, log.trim());
  t.match(log, `<5>event=firewall-loaded server=${SERVER_IP} origin="${STATION_URL}client.conf line 2" http=${HTTP} signal=${SIGNAL} spice=${SPICE}`);
  t.ok(world.http.lines.slice(served).includes(`GET /client.conf from ${STATION_IP}`), 'client.conf fetched from the station, through the rules for the lease');
  t.same(await acceptRules(), [
    'input/dhcp-reply: udp sport 67 udp dport 68 counter accept',
    `output/dhcp: ip daddr { ${SERVER_IP}, 255.255.255.255 } udp sport 68 udp dport 67 counter accept`,
    `output/ntp: ip daddr ${SERVER_IP} udp dport 123 counter accept`,
    `output/http: ip daddr ${SERVER_IP} tcp dport ${HTTP} counter accept`,
    `output/signal: ip daddr ${SERVER_IP} tcp dport ${SIGNAL} counter accept`,
    `output/spice: ip daddr ${SERVER_IP} tcp dport ${SPICE} counter accept`,
  ]);
  t.same(await reachable(), { http: 'open', signal: 'open', spice: 'open', defaultSignal: 'blocked', ssh: 'blocked', other: 'blocked' });
});

t.test("the agent's settings from the same lease and client.conf", async (t) => {
  const { stdout } = await run('ip', ['netns', 'exec', STATION, process.execPath, join(dir, 'settings.mjs'), SHIPPED_CONF, card, leases], { timeout: 30_000 });
  const cfg = JSON.parse(stdout) as Record<string, unknown>;
  t.same(
    [cfg['serverAddress'], cfg['serverOrigin'], cfg['httpPort'], cfg['signalPort'], cfg['spicePort'], cfg['protocol']],
    [SERVER_IP, `${STATION_URL}client.conf line 2`, HTTP, SIGNAL, SPICE, 'v1'],
  );
});

t.test("the card's file wins over the lease", async (t) => {
  await mkdir(join(dir, 'card', 'tabula'), { recursive: true });
  // As a PC writes it: CRLF, and the original stations' keys.
  await writeFile(card, `server_ip=${OTHER_IP}\r\nvdi_signal_port=5905\r\nserver_config=no\r\n`);
  const { code, log } = await firewall();
  t.equal(code, 0, log.trim());
  t.match(log, `event=firewall-loaded server=${OTHER_IP} origin="${card} line 1" http=${HTTP} signal=5905 spice=5906`, "the card's server; the lease's HTTP port, which the card does not set");
  await lan.forgetConnections(STATION);
  const [other, server] = await Promise.all([lan.tcp(STATION, OTHER_IP, 5905), lan.tcp(STATION, SERVER_IP, SIGNAL)]);
  t.equal(other, 'open', "the card's server is reached");
  t.match(server, BLOCKED, `the lease's is not (${server})`);
  await writeFile(card, 'server_ip=169.254.24\r\n');
  const bad = await firewall();
  t.equal(bad.code, 1, 'a bad card file fails');
  t.match(bad.log, `event=firewall-failed code=config-invalid error="${card} line 1: server_ip=169.254.24: expected an IPv4 address`);
  t.match(bad.log, 'event=firewall-lockdown ');
  t.same(await acceptRules(), [], 'closed: the lockdown, loopback only');
  await writeFile(card, '# nothing here\n');
  t.equal((await firewall()).code, 0, 'a card file that sets nothing: the lease again');
  t.equal((await reachable()).signal, 'open');
});

t.test('the lease gone: DHCP only again', async (t) => {
  networkd!.proc.kill('SIGTERM');
  await waitFor('networkd to stop', async () => (networkd!.proc.exitCode !== null || networkd!.proc.signalCode !== null ? true : undefined), 15_000, 100);
  t.same(await readdir(leases), [], 'networkd removed its lease as it stopped');
  // And released the address: put it back, so that what the probes meet is the firewall, not a missing route.
  await run('ip', ['-n', STATION, 'addr', 'replace', `${STATION_IP}/24`, 'dev', 'eth0']);
  const { code, log } = await firewall();
  t.equal(code, 0, log.trim());
  t.match(log, 'event=firewall-dhcp-only ');
  await lan.forgetConnections(STATION);
  t.same(await reachable(), { http: 'blocked', signal: 'blocked', spice: 'blocked', defaultSignal: 'blocked', ssh: 'blocked', other: 'blocked' });
});
