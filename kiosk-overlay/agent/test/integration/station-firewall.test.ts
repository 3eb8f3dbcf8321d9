// The station firewall in a real kernel: a station LAN of three namespaces
// (the server .1, another host .2, the station .50, on a bridge inside the
// server's namespace), the rendered ruleset loaded in the station's through
// the real adapter, and every flow tried for real. Each flow that must be
// blocked is first shown to work without the firewall, so "blocked" means the
// firewall blocked it, not that nothing was there.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { applyNftRuleset } from '../../src/adapters/nft-apply.js';
import { renderStationFirewall, renderStationLockdown, STATION_TABLE, type FirewallInput } from '../../src/render/station-firewall.js';
import { run, waitFor } from '../../../../supervisor/test/helpers/env.js';

const STATION = 'tabula-it-fw-station';
const SERVER = 'tabula-it-fw-server';
const OTHER = 'tabula-it-fw-other';
const SPACES = [STATION, SERVER, OTHER];
const SERVER_IP = '169.254.24.1';
const OTHER_IP = '169.254.24.2';
const STATION_IP = '169.254.24.50';
const SERVER_IP6 = 'fd24::1';
const STATION_IP6 = 'fd24::50';
const CFG: FirewallInput = { serverAddress: SERVER_IP, signalPort: 5905, spicePort: 5906, httpPort: 80 };
/** A dropped SYN or datagram is given this long: the answer on a veth takes well under a millisecond. */
const PROBE_MS = 1000;

// Small programs run inside the namespaces with `ip netns exec NS node probe.mjs …`.
const PROBE = String.raw`
import net from 'node:net';
import dgram from 'node:dgram';
const [cmd, ...a] = process.argv.slice(2);
const out = (s) => process.stdout.write(s + '\n');
const finish = (s) => { out(s); process.exit(0); };
if (cmd === 'serve') {
  // tcp:P echoes; udp:P echoes; udpq:P only logs (two echoing ends would ping-pong).
  let pending = a.length;
  const ready = () => { if (--pending === 0) out('ready'); };
  for (const spec of a) {
    const [kind, p] = spec.split(':');
    const port = Number(p);
    if (kind === 'tcp') {
      net.createServer((c) => { out('tcp ' + port + ' from ' + c.remoteAddress); c.on('data', (d) => c.write(d)); c.on('error', () => {}); })
        .listen({ host: '::', port, ipv6Only: false }, ready);
    } else {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      s.on('message', (m, r) => {
        out('udp ' + port + ' from ' + r.address + ':' + r.port + ' ' + m.toString().trim());
        if (kind === 'udp') s.send(m, r.port, r.address);
      });
      s.bind(port, '0.0.0.0', ready);
    }
  }
} else if (cmd === 'tcp') {
  // tcp HOST PORT MS: open (the echo came back), refused, timeout or error:CODE.
  const [host, port, ms] = a;
  const s = net.connect({ host, port: Number(port) });
  setTimeout(() => finish('timeout'), Number(ms));
  s.on('connect', () => s.write('ping\n'));
  s.on('data', (d) => { if (d.toString().includes('ping')) finish('open'); });
  s.on('error', (e) => finish(e.code === 'ECONNREFUSED' ? 'refused' : 'error:' + e.code));
} else if (cmd === 'udp') {
  // udp HOST PORT MS: answered, refused (an ICMP error came back), timeout or error:CODE.
  const [host, port, ms] = a;
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  s.on('error', (e) => finish(e.code === 'ECONNREFUSED' ? 'refused' : 'error:' + e.code));
  s.on('message', () => finish('answered'));
  // Connected: the kernel passes an ICMP error for this flow on to the socket.
  s.connect(Number(port), host, () => {
    s.send('ping', (e) => { if (e) finish('error:' + e.code); });
    setTimeout(() => finish('timeout'), Number(ms));
  });
} else if (cmd === 'udp-send') {
  // udp-send HOST PORT SADDR SPORT TEXT: one datagram, nothing awaited: sent or error:CODE.
  const [host, port, saddr, sport, text] = a;
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  s.on('error', (e) => finish('error:' + e.code));
  s.bind(Number(sport), saddr, () => {
    s.setBroadcast(true);
    s.send(text, Number(port), host, (e) => finish(e ? 'error:' + e.code : 'sent'));
  });
}
`;

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
const probeFile = join(dir, 'probe.mjs');
const children: ChildProcess[] = [];

async function removeWorld(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const ns of SPACES) {
    // Whatever still runs in our own namespaces was started by this test.
    const { stdout } = await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }));
    for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

async function removeAll(): Promise<void> {
  await removeWorld();
  await rm(dir, { recursive: true, force: true });
}
t.teardown(removeAll);

/** The LAN: the bridge lives in the server's namespace, so deleting the namespaces removes every link. */
async function makeLan(): Promise<void> {
  // A run killed half-way (a tap timeout) may have left its namespaces and directory.
  await removeWorld();
  for (const stale of (await readdir(tmpdir())).filter((d) => d.startsWith('tabula-it-fw-') && join(tmpdir(), d) !== dir)) {
    await rm(join(tmpdir(), stale), { recursive: true, force: true });
  }
  await writeFile(probeFile, PROBE);
  for (const ns of SPACES) {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await run('ip', ['-n', SERVER, 'link', 'add', 'br0', 'type', 'bridge']);
  await run('ip', ['-n', SERVER, 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'br0']);
  await run('ip', ['-n', SERVER, 'addr', 'add', `${SERVER_IP6}/64`, 'dev', 'br0', 'nodad']);
  await run('ip', ['-n', SERVER, 'link', 'set', 'br0', 'up']);
  for (const [ns, port, ip4, ip6] of [
    [STATION, 'p-station', STATION_IP, STATION_IP6],
    [OTHER, 'p-other', OTHER_IP, undefined],
  ] as const) {
    await run('ip', ['-n', SERVER, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run('ip', ['-n', SERVER, 'link', 'set', port, 'master', 'br0', 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', `${ip4}/24`, 'dev', 'eth0']);
    if (ip6 !== undefined) await run('ip', ['-n', ns, 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
    await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }
}

/** A long-running program in `ns`; resolves once it printed `ready` (or at once when `ready` is false). */
async function start(ns: string, args: string[], ready = true): Promise<{ lines: string[]; proc: ChildProcess }> {
  const proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  const lines: string[] = [];
  let tail = '';
  const take = (chunk: Buffer) => {
    const parts = (tail + chunk.toString()).split('\n');
    tail = parts.pop() ?? '';
    lines.push(...parts);
  };
  proc.stdout!.on('data', take);
  proc.stderr!.on('data', take);
  if (ready) {
    const what = `${args.join(' ')} in ${ns}`;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not ready within 10 s: ${lines.join(' | ')}`)), 10_000);
      proc.stdout!.on('data', () => {
        if (lines.includes('ready')) resolve();
      });
      proc.on('exit', (code) => reject(new Error(`${what} exited (${code}): ${lines.join(' | ')}`)));
    }).finally(() => clearTimeout(timer));
  }
  return { lines, proc };
}

async function probe(ns: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'node', probeFile, ...args], { timeout: 15_000 });
  return stdout.trim();
}
const tcp = (ns: string, host: string, port: number) => probe(ns, 'tcp', host, String(port), String(PROBE_MS));
const udp = (ns: string, host: string, port: number) => probe(ns, 'udp', host, String(port), String(PROBE_MS));
const udpSend = (ns: string, host: string, port: number, saddr: string, sport: number, text: string) => probe(ns, 'udp-send', host, String(port), saddr, String(sport), text);
/** A dropped packet: either nothing came back in time, or the station's own output chain refused to send it. */
const BLOCKED = /^(timeout|error:EPERM)$/;

async function ping(ns: string, host: string): Promise<boolean> {
  return run('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '1', host], { timeout: 10_000 }).then(
    () => true,
    () => false,
  );
}

const applyInStation = (ruleset: string) => applyNftRuleset(ruleset, { command: ['ip', 'netns', 'exec', STATION, 'nft'] });

/** The station table's rules: `chain/comment` → packets counted (rules without a counter: -1). */
async function counters(): Promise<Record<string, number>> {
  const { stdout } = await run('ip', ['netns', 'exec', STATION, 'nft', '-j', 'list', 'table', 'inet', STATION_TABLE]);
  const doc = JSON.parse(stdout) as { nftables: Array<{ rule?: { chain: string; comment?: string; expr: Array<Record<string, unknown>> } }> };
  const out: Record<string, number> = {};
  for (const { rule } of doc.nftables) {
    if (rule?.comment === undefined) continue;
    const counter = rule.expr.find((e) => 'counter' in e)?.['counter'] as { packets: number } | undefined;
    out[`${rule.chain}/${rule.comment}`] = counter?.packets ?? -1;
  }
  return out;
}

/** A regular expression matching exactly the line `text`. */
function exactly(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

/** Empties the station's conntrack table: the next packet of any flow is judged as new. */
async function forgetConnections(): Promise<void> {
  await run('ip', ['netns', 'exec', STATION, 'conntrack', '-F'], { timeout: 10_000 });
}

/**
 * Waits until `lines` has one matching `re` (a datagram that arrived); false after `ms`,
 * or as soon as `proc` is gone. What must not arrive is given PROBE_MS.
 */
async function arrives(lines: string[], re: RegExp, ms = 5_000, proc?: ChildProcess): Promise<boolean> {
  const seen = async () => (lines.some((l) => re.test(l)) ? true : proc !== undefined && proc.exitCode !== null ? false : undefined);
  return waitFor('a line', seen, ms, 20).catch(() => false);
}

// Services on every host: the server's own (and two it must not offer the station), a
// look-alike on the other host, listeners on the station for the inbound tests. A setup
// that fails half-way removes what it made before the error ends the file.
const { server, other, station } = await (async () => {
  await makeLan();
  return {
    server: await start(SERVER, ['node', probeFile, 'serve', 'tcp:80', 'tcp:5905', 'tcp:5906', 'tcp:22', 'tcp:8080', 'udp:53', 'udpq:67']),
    other: await start(OTHER, ['node', probeFile, 'serve', 'tcp:5905', 'udp:123', 'udpq:67']),
    station: await start(STATION, ['node', probeFile, 'serve', 'tcp:5900', 'tcp:22', 'udpq:68']),
  };
})().catch(async (e: unknown) => {
  await removeAll();
  throw e;
});

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
