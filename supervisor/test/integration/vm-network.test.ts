// The VMs' network against the real kernel and a real dnsmasq. Everything is
// built here in network namespaces and removed at the end:
//
//   vm1, vm2 ──veth──┐                          ┌── internet: 198.51.100.10/.20/.30/.31/.40/.50
//   (where a VM's    tbr bridge 10.88.0.1 [server] uplink 198.51.100.1 ── (web servers, an echo
//    tap would be)   │  table + VMs' dnsmasq     │                          server) and the upstream
//                    └── station LAN 192.168.24.1 ── station 192.168.24.10   DNS at 198.51.100.53
//
// The server namespace holds the VM bridge, Tabula's table (applied through
// NftVmNetwork), the VMs' dnsmasq (config from renderDnsmasqVms, names from
// renderDnsmasqVmsServers) and stand-ins for the server's own services. The
// upstream DNS is a dnsmasq authoritative for the test names. Nothing touches
// the host's own ruleset.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { NftVmNetwork } from '../../src/adapters/nft-vm-network.js';
import { TabulaError } from '../../src/domain/errors.js';
import type { VmNetworkSpec } from '../../src/domain/vm-network.js';
import { diffWhitelist, parseWhitelist, whitelistCidrs, type WhitelistEntry } from '../../src/domain/whitelist.js';
import { renderDnsmasqVms, renderDnsmasqVmsServers } from '../../src/render/dnsmasq-vms.js';
import { renderWhitelistUpdate } from '../../src/render/vm-network.js';
import { run, TEST_PREFIX, waitFor } from '../helpers/env.js';

const ID = `${TEST_PREFIX}-vmn`;
const NS = {
  server: `tabula-${ID}-srv`,
  internet: `tabula-${ID}-net`,
  station: `tabula-${ID}-st`,
  vm1: `tabula-${ID}-vm1`,
  vm2: `tabula-${ID}-vm2`,
} as const;
const TABLE = `tabula_${TEST_PREFIX}_vmn`;
const BRIDGE = `tbr-${ID}`;
const LAN_BRIDGE = `tbr-${ID}-lan`;
const UPLINK = `tv-${ID}-up`;
const SERVER = '10.88.0.1';
const SUBNET = '10.88.0.0/24';
const STATION_LAN = '192.168.24.0/24';
const LAN_ADDRESS = '192.168.24.1';
const STATION = '192.168.24.10';
const UPSTREAM_DNS = '198.51.100.53';
/** A stand-in for the server's signal port / Spice consoles / metrics. */
const SERVICE_PORT = 5905;
const HOSTS = { allowed: '198.51.100.10', other: '198.51.100.20', sub: '198.51.100.30', wild: '198.51.100.31', raw: '198.51.100.40', late: '198.51.100.50' } as const;
const ECHO_PORT = 7000;
const VM_PORT = 8080;
/** Every network probe gives up after this; a dropped SYN shows up as `timeout`. */
const PROBE_MS = 1500;
/** dnsmasq's max-ttl / max-cache-ttl here: short, so a re-resolution always reaches upstream. */
const DNS_TTL = 1;

const IN_SERVER = ['ip', 'netns', 'exec', NS.server];
const network = new NftVmNetwork({ command: [...IN_SERVER, 'nft'] });

let dir = '';
let serversFile = '';
const spawned: ChildProcessWithoutNullStreams[] = [];
const logs = new Map<string, string[]>();

function spec(whitelist: readonly WhitelistEntry[], over: Partial<VmNetworkSpec> = {}): VmNetworkSpec {
  return {
    table: TABLE,
    bridge: BRIDGE,
    subnet: SUBNET,
    serverAddress: SERVER,
    allow: whitelistCidrs(whitelist),
    forbidden: [STATION_LAN],
    resolvedTimeout: 600,
    masquerade: true,
    ...over,
  };
}

/** What the whitelist service would do: parse against the forbidden ranges, refusing the whole list on any bad entry. */
function whitelist(...texts: string[]): WhitelistEntry[] {
  return parseWhitelist(texts, [SUBNET, STATION_LAN]);
}

async function sh(cmd: string, ...args: string[]): Promise<string> {
  return (await run(cmd, args, { timeout: 15_000 })).stdout;
}

function inNs(ns: string, cmd: string, ...args: string[]): Promise<string> {
  return sh('ip', 'netns', 'exec', ns, cmd, ...args);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- processes inside a namespace ---------------------------------------------------------------

function plainEnv(): NodeJS.ProcessEnv {
  // tap's loaders are for the test itself, not for the small plain scripts run in the namespaces.
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  return env;
}

/** A long-running process; its output lines go to `logs` under `name` and to `onLine`. */
function start(name: string, ns: string, argv: string[], onLine?: (line: string) => void): ChildProcessWithoutNullStreams {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { env: plainEnv() });
  spawned.push(child);
  const lines: string[] = [];
  logs.set(name, lines);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (l) => {
      lines.push(l);
      onLine?.(l);
    });
  }
  return child;
}

async function stop(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

/** Starts a node script in `ns` and waits for its `listening` line. */
function listen(name: string, ns: string, script: string, args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start`)), 15_000);
    const child = start(name, ns, [process.execPath, '-e', script, ...args], (l) => {
      if (l !== 'listening') return;
      clearTimeout(timer);
      resolve();
    });
    // After `listening` this settles nothing: a promise settles once.
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}): ${logs.get(name)?.join(' | ')}`));
    });
  });
}

// Servers, one per `host,port,kind` argument: `http` answers every request with
// `host HOST from PEER`; `echo` echoes lines; `banner` writes `banner HOST` and closes.
const SERVERS = `
const net = require('node:net');
const http = require('node:http');
const out = (l) => process.stdout.write(l + '\\n');
const specs = process.argv.slice(1);
let pending = specs.length;
const done = () => { if (--pending === 0) out('listening'); };
for (const spec of specs) {
  const [host, port, kind] = spec.split(',');
  let server;
  if (kind === 'http') {
    server = http.createServer((req, res) => { res.end('host ' + host + ' from ' + req.socket.remoteAddress); });
  } else if (kind === 'echo') {
    server = net.createServer((s) => { s.on('error', () => undefined); s.pipe(s); });
  } else {
    server = net.createServer((s) => { s.on('error', () => undefined); s.end('banner ' + host + '\\n'); });
  }
  server.on('error', (e) => { out('error ' + spec + ' ' + e.code); process.exit(1); });
  server.listen({ host, port: Number(port) }, done);
}
`;

// One probe, one JSON line. `resolve NAME`: {addresses} or {error};
// `http HOST PORT`: {body} or {error} (`timeout` when nothing answered in time);
// `tcp HOST PORT`: {data} or {error}.
const PROBE = `
const dns = require('node:dns');
const http = require('node:http');
const net = require('node:net');
const [kind, a, b, ms] = process.argv.slice(1);
const out = (o) => { process.stdout.write(JSON.stringify(o) + '\\n'); process.exit(0); };
const timer = setTimeout(() => out({ error: 'timeout' }), Number(ms));
if (kind === 'resolve') {
  const r = new dns.promises.Resolver({ timeout: Number(ms) - 200, tries: 1 });
  r.setServers([a]);
  r.resolve4(b).then((addresses) => out({ addresses: addresses.sort() }), (e) => out({ error: e.code }));
} else if (kind === 'http') {
  const req = http.get({ host: a, port: Number(b), path: '/', agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => out({ body }));
  });
  req.on('error', (e) => out({ error: e.code }));
} else {
  const s = net.connect({ host: a, port: Number(b) });
  s.setEncoding('utf8');
  s.on('data', (d) => out({ data: d.trim() }));
  s.on('error', (e) => out({ error: e.code }));
}
void timer;
`;

async function probe(ns: string, ...args: string[]): Promise<{ addresses?: string[]; body?: string; data?: string; error?: string }> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', PROBE, ...args, String(PROBE_MS)], { timeout: PROBE_MS + 15_000, env: plainEnv() });
  return JSON.parse(stdout.trim()) as { addresses?: string[]; body?: string; error?: string };
}

/** Resolves `name` through the VMs' resolver, as a VM does. */
function resolve(vm: string, name: string): Promise<{ addresses?: string[]; error?: string }> {
  return probe(vm, 'resolve', SERVER, name);
}

/** `host ADDRESS from PEER` when the web server answered, else the error (`timeout` for a drop). */
async function get(vm: string, address: string, port = 80): Promise<string> {
  const r = await probe(vm, 'http', address, String(port));
  return r.body ?? `error ${r.error}`;
}

/** Resolves and connects, as a browser does. */
async function browse(vm: string, name: string): Promise<string> {
  const r = await resolve(vm, name);
  if (r.addresses === undefined) return `resolve ${r.error}`;
  return get(vm, r.addresses[0] as string);
}

/** A connection that stays open: send a line, read its echo. */
class EchoSession {
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(ns: string, host: string, port: number) {
    const script = `
      const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
      s.setEncoding('utf8');
      s.on('connect', () => process.stdout.write('connected\\n'));
      s.on('data', (d) => process.stdout.write('echo ' + d));
      s.on('error', (e) => { process.stdout.write('error ' + e.code + '\\n'); process.exit(0); });
      s.on('close', () => { process.stdout.write('closed\\n'); process.exit(0); });
      process.stdin.setEncoding('utf8');
      process.stdin.on('data', (d) => s.write(d));
      process.stdin.on('end', () => { s.destroy(); process.exit(0); });`;
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, host, String(port)], { env: plainEnv() });
    spawned.push(this.child);
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      this.lines.push(l);
      this.waiter?.();
    });
  }

  async next(timeoutMs = PROBE_MS + 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return 'no-answer';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.lines.shift() as string;
  }

  async say(line: string): Promise<string> {
    this.child.stdin.write(`${line}\n`);
    return this.next(PROBE_MS + 2000);
  }

  async close(): Promise<void> {
    this.child.stdin.end();
    await stop(this.child);
  }
}

// ---- the world --------------------------------------------------------------------------------

let dnsmasq: ChildProcessWithoutNullStreams | undefined;
const vmAddress: Record<'vm1' | 'vm2', string> = { vm1: '', vm2: '' };

async function teardownWorld(): Promise<void> {
  for (const c of spawned.splice(0)) await stop(c);
  dnsmasq = undefined;
  for (const ns of Object.values(NS)) {
    // Whatever still runs in our namespaces, e.g. left by a run that was killed (no PID namespace: by PID).
    const { stdout } = await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }));
    for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
    // Links, addresses, the table and conntrack entries go with the namespace.
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  // And a directory a killed run left.
  for (const d of await readdir(tmpdir())) {
    if (d.startsWith(`tabula-${ID}-`)) await rm(join(tmpdir(), d), { recursive: true, force: true });
  }
}

async function veth(ns: string, outside: string, peerNs: string, inside: string): Promise<void> {
  await sh('ip', '-n', ns, 'link', 'add', outside, 'type', 'veth', 'peer', 'name', inside, 'netns', peerNs);
}

async function buildWorld(): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), `tabula-${ID}-`));
  // dnsmasq re-reads the servers file as user nobody after a SIGHUP.
  await chmod(dir, 0o711);
  serversFile = join(dir, 'servers.conf');
  for (const ns of Object.values(NS)) {
    await sh('ip', 'netns', 'add', ns);
    await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  const S = NS.server;
  await inNs(S, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  // The VM bridge.
  await inNs(S, 'ip', 'link', 'add', BRIDGE, 'type', 'bridge');
  await inNs(S, 'ip', 'addr', 'add', `${SERVER}/24`, 'dev', BRIDGE);
  await inNs(S, 'ip', 'link', 'set', BRIDGE, 'up');
  for (const [i, vm] of [NS.vm1, NS.vm2].entries()) {
    const port = `tv-${ID}-${i + 1}`;
    await veth(S, port, vm, 'eth0');
    await inNs(S, 'ip', 'link', 'set', port, 'master', BRIDGE, 'up');
    await inNs(vm, 'ip', 'link', 'set', 'eth0', 'up');
  }
  // The station LAN, with one station.
  await inNs(S, 'ip', 'link', 'add', LAN_BRIDGE, 'type', 'bridge');
  await inNs(S, 'ip', 'addr', 'add', `${LAN_ADDRESS}/24`, 'dev', LAN_BRIDGE);
  await inNs(S, 'ip', 'link', 'set', LAN_BRIDGE, 'up');
  await veth(S, `tv-${ID}-st`, NS.station, 'eth0');
  await inNs(S, 'ip', 'link', 'set', `tv-${ID}-st`, 'master', LAN_BRIDGE, 'up');
  await inNs(NS.station, 'ip', 'addr', 'add', `${STATION}/24`, 'dev', 'eth0');
  await inNs(NS.station, 'ip', 'link', 'set', 'eth0', 'up');
  await inNs(NS.station, 'ip', 'route', 'add', 'default', 'via', LAN_ADDRESS);
  // The Internet: every host and the upstream DNS on one namespace, routed back through the server.
  await veth(S, UPLINK, NS.internet, 'eth0');
  await inNs(S, 'ip', 'addr', 'add', '198.51.100.1/24', 'dev', UPLINK);
  await inNs(S, 'ip', 'link', 'set', UPLINK, 'up');
  for (const a of [...Object.values(HOSTS), UPSTREAM_DNS]) await inNs(NS.internet, 'ip', 'addr', 'add', `${a}/24`, 'dev', 'eth0');
  await inNs(NS.internet, 'ip', 'link', 'set', 'eth0', 'up');
  await inNs(NS.internet, 'ip', 'route', 'add', 'default', 'via', '198.51.100.1');

  await listen('internet', NS.internet, SERVERS, [...Object.values(HOSTS).map((h) => `${h},80,http`), `${HOSTS.allowed},${ECHO_PORT},echo`]);
  await listen('server-services', NS.server, SERVERS, [`${SERVER},${SERVICE_PORT},banner`, `${LAN_ADDRESS},${SERVICE_PORT},banner`]);
  await listen('station', NS.station, SERVERS, [`${STATION},80,http`]);
  start('upstream-dns', NS.internet, [
    'dnsmasq',
    '--keep-in-foreground',
    '--log-facility=-',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    `--listen-address=${UPSTREAM_DNS}`,
    '--pid-file=',
    '--local=/test/',
    `--address=/allowed.test/${HOSTS.allowed}`,
    `--address=/other.test/${HOSTS.other}`,
    `--address=/wild.test/${HOSTS.wild}`,
    `--address=/sub.wild.test/${HOSTS.sub}`,
    `--address=/station.wild.test/${STATION}`,
    `--address=/late.test/${HOSTS.late}`,
  ]);
}

async function startVmDnsmasq(names: readonly WhitelistEntry[]): Promise<void> {
  await writeServers(names);
  const config = join(dir, 'dnsmasq-vms.conf');
  await writeFile(
    config,
    renderDnsmasqVms({
      bridge: BRIDGE,
      subnet: SUBNET,
      serverAddress: SERVER,
      dhcpRange: { from: '10.88.0.100', to: '10.88.0.199' },
      leaseSeconds: 3600,
      upstreams: [UPSTREAM_DNS],
      table: TABLE,
      leaseFile: join(dir, 'vms.leases'),
      serversFile,
      dnsTtl: DNS_TTL,
      logQueries: true,
    }),
    { mode: 0o644 },
  );
  await sh('dnsmasq', '--test', `--conf-file=${config}`);
  dnsmasq = start('vm-dnsmasq', NS.server, ['dnsmasq', '--keep-in-foreground', '--log-facility=-', `--conf-file=${config}`]);
  await waitFor('the VMs’ dnsmasq', async () => ((logs.get('vm-dnsmasq') ?? []).some((l) => /DHCP, sockets bound/.test(l)) ? true : undefined), 10_000, 50);
}

async function writeServers(names: readonly WhitelistEntry[]): Promise<void> {
  await writeFile(serversFile, renderDnsmasqVmsServers([UPSTREAM_DNS], names), { mode: 0o644 });
}

/** A whitelist change as the supervisor makes it: resolver first, then the table, live. */
async function changeWhitelist(before: readonly WhitelistEntry[], after: readonly WhitelistEntry[]): Promise<void> {
  const diff = diffWhitelist(before, after);
  await writeServers(after);
  // SIGHUP: dnsmasq re-reads the servers file and empties its cache.
  const cleared = () => (logs.get('vm-dnsmasq') ?? []).filter((l) => /cleared cache/.test(l)).length;
  const clearedBefore = cleared();
  dnsmasq?.kill('SIGHUP');
  await waitFor('dnsmasq to re-read its servers', async () => (cleared() > clearedBefore ? true : undefined), 5_000, 20);
  await network.setWhitelist(spec(after), { forgetResolved: diff.namesRemoved });
}

/** A VM takes a lease the way a guest does (busybox udhcpc), and configures it. */
async function lease(vm: 'vm1' | 'vm2'): Promise<string> {
  const script = join(dir, 'udhcpc.sh');
  await writeFile(script, '#!/bin/sh\ncase "$1" in bound|renew) ip addr add "$ip/$mask" dev "$interface"; for r in $router; do ip route add default via "$r" dev "$interface"; done;; esac\n', { mode: 0o755 });
  await inNs(NS[vm], 'busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', script);
  const m = /inet (10\.88\.0\.\d+)\/24/.exec(await inNs(NS[vm], 'ip', '-4', 'addr', 'show', 'eth0'));
  if (m === null) throw new Error(`${vm} got no address`);
  return m[1] as string;
}

async function setElements(set: string): Promise<string[]> {
  const doc = JSON.parse(await inNs(NS.server, 'nft', '-j', 'list', 'set', 'inet', TABLE, set)) as {
    nftables: Array<{ set?: { elem?: unknown[] } }>;
  };
  const elems = doc.nftables.find((o) => o.set !== undefined)?.set?.elem ?? [];
  return elems
    .map((e) => {
      const v = (e as { elem?: { val?: unknown } }).elem?.val ?? e;
      if (typeof v === 'string') return v;
      const p = (v as { prefix?: { addr: string; len: number } }).prefix;
      return p === undefined ? JSON.stringify(v) : `${p.addr}/${p.len}`;
    })
    .sort();
}

/** The table's handle and its chains' rules (without counters): the same after a live change. */
async function tableIdentity(): Promise<string> {
  const doc = JSON.parse(await inNs(NS.server, 'nft', '-j', 'list', 'table', 'inet', TABLE)) as { nftables: Array<Record<string, { handle?: number; name?: string }>> };
  return doc.nftables
    .flatMap((o) => Object.entries(o))
    .filter(([k]) => k === 'table' || k === 'chain' || k === 'rule' || k === 'set')
    .map(([k, v]) => `${k}:${v.name ?? ''}#${v.handle ?? ''}`)
    .join(' ');
}

// ---- the tests ----------------------------------------------------------------------------------

let current: WhitelistEntry[] = whitelist('allowed.test', '*.wild.test');

// Dropped packets are seen as timeouts, and a few waits are for timeouts to pass: longer than tap's default.
t.setTimeout(180_000);

t.before(async () => {
  await teardownWorld();
  await buildWorld();
});

// A safety net for a failing run; the last subtest does the same and checks it.
t.teardown(async () => {
  t.comment(`VMs' dnsmasq said:\n${(logs.get('vm-dnsmasq') ?? []).slice(-40).join('\n')}`);
  await teardownWorld();
});

t.test('without the table, a VM reaches everything (so the drops below are the table at work)', async (t) => {
  t.equal((await inNs(NS.server, 'sysctl', '-n', 'net.bridge.bridge-nf-call-iptables')).trim(), '1', 'br_netfilter passes bridged packets to the inet hooks');
  await startVmDnsmasq(current);
  vmAddress.vm1 = await lease('vm1');
  vmAddress.vm2 = await lease('vm2');
  t.comment(`vm1 ${vmAddress.vm1}, vm2 ${vmAddress.vm2}`);
  await listen('vm2-service', NS.vm2, SERVERS, [`${vmAddress.vm2},${VM_PORT},banner`]);
  t.same(await probe(NS.vm1, 'tcp', vmAddress.vm2, String(VM_PORT)), { data: `banner ${vmAddress.vm2}` }, 'the other VM');
  t.same(await probe(NS.vm1, 'tcp', SERVER, String(SERVICE_PORT)), { data: `banner ${SERVER}` }, 'a server service on the VM bridge');
  t.same(await probe(NS.vm1, 'tcp', LAN_ADDRESS, String(SERVICE_PORT)), { data: `banner ${LAN_ADDRESS}` }, 'a server service on the station LAN');
  t.equal(await get(NS.vm1, STATION), `host ${STATION} from ${vmAddress.vm1}`, 'a station');
  t.equal(await get(NS.vm1, HOSTS.other), `host ${HOSTS.other} from ${vmAddress.vm1}`, 'any Internet host');
});

t.test('VMs get their lease through the table', async (t) => {
  await network.apply(spec(current));
  await inNs(NS.vm1, 'ip', 'addr', 'flush', 'dev', 'eth0');
  const again = await lease('vm1');
  t.match(again, /^10\.88\.0\.1\d\d$/, `vm1 leased ${again} from the range`);
  vmAddress.vm1 = again;
  t.match(await inNs(NS.vm1, 'ip', 'route'), /default via 10\.88\.0\.1/, 'with the server as its gateway');
});

t.test('a whitelisted name resolves and its server answers; its address is learnt', async (t) => {
  t.same(await resolve(NS.vm1, 'allowed.test'), { addresses: [HOSTS.allowed] });
  t.equal(await get(NS.vm1, HOSTS.allowed), `host ${HOSTS.allowed} from 198.51.100.1`, 'answers, seeing the server’s address (masquerade)');
  t.ok((await setElements('resolved4')).includes(HOSTS.allowed), 'resolved4 holds it');
});

t.test('a name not whitelisted does not resolve, and its address does not answer', async (t) => {
  t.same(await resolve(NS.vm1, 'other.test'), { error: 'ENOTFOUND' }, 'NXDOMAIN');
  t.equal(await get(NS.vm1, HOSTS.other), 'error timeout', 'its raw address is dropped');
  t.same(await resolve(NS.vm1, 'www.allowed.test'), { error: 'ENOTFOUND' }, 'an exact entry opens no subdomain');
  t.same(await resolve(NS.vm1, 'allowed.test.other.test'), { error: 'ENOTFOUND' }, 'nor a name merely containing it');
});

t.test('a wildcard opens its subdomains and its bare name', async (t) => {
  t.equal(await browse(NS.vm1, 'sub.wild.test'), `host ${HOSTS.sub} from 198.51.100.1`);
  t.equal(await browse(NS.vm1, 'deep.sub.wild.test'), `host ${HOSTS.sub} from 198.51.100.1`);
  t.equal(await browse(NS.vm1, 'wild.test'), `host ${HOSTS.wild} from 198.51.100.1`);
});

t.test('whatever DNS says, the station LAN stays closed', async (t) => {
  // A whitelisted zone pointing one of its names at a station (DNS rebinding).
  t.same(await resolve(NS.vm1, 'station.wild.test'), { addresses: [STATION] });
  t.ok((await setElements('resolved4')).includes(STATION), 'dnsmasq learnt it…');
  t.equal(await get(NS.vm1, STATION), 'error timeout', '…and forbidden4 still drops it');
});

t.test('nothing else: not the other VM, not the server, not the station LAN', async (t) => {
  const attempts: Array<[string, Promise<unknown>]> = [
    ['the other VM (bridged: through br_netfilter)', probe(NS.vm1, 'tcp', vmAddress.vm2, String(VM_PORT))],
    ['and the other way', probe(NS.vm2, 'tcp', vmAddress.vm1, '22')],
    ['a server service on the VM bridge', probe(NS.vm1, 'tcp', SERVER, String(SERVICE_PORT))],
    ['a server service on the station LAN address', probe(NS.vm1, 'tcp', LAN_ADDRESS, String(SERVICE_PORT))],
    ['a station cannot reach a VM either', probe(NS.station, 'tcp', vmAddress.vm1, '22')],
  ];
  const outcomes = await Promise.all(attempts.map(([, p]) => p));
  attempts.forEach(([what], i) => t.same(outcomes[i], { error: 'timeout' }, what));
  // The server's own services still answer where they are meant to.
  t.same(await probe(NS.station, 'tcp', LAN_ADDRESS, String(SERVICE_PORT)), { data: `banner ${LAN_ADDRESS}` }, 'control: the station reaches the server');
});

t.test('blocked attempts are counted per VM', async (t) => {
  const before = await network.blockedCounts(TABLE);
  t.ok((before.get(vmAddress.vm1) ?? 0) > 0, `vm1 has blocked packets (${before.get(vmAddress.vm1)})`);
  const vm2Before = before.get(vmAddress.vm2) ?? 0;
  t.equal(await get(NS.vm2, HOSTS.other), 'error timeout');
  const after = await network.blockedCounts(TABLE);
  t.ok((after.get(vmAddress.vm2) ?? 0) > vm2Before, `vm2's count rose (${vm2Before} → ${after.get(vmAddress.vm2)})`);
  t.equal(after.get(vmAddress.vm1), before.get(vmAddress.vm1), 'vm1 did nothing meanwhile');
  t.same([...after.keys()].filter((a) => a !== vmAddress.vm1 && a !== vmAddress.vm2), [], 'only the VMs are counted');
  t.comment(`blocked: ${JSON.stringify([...after])}`);

  await network.forgetBlocked(TABLE, [vmAddress.vm1, '10.88.0.250']);
  const forgotten = await network.blockedCounts(TABLE);
  t.equal(forgotten.get(vmAddress.vm1), undefined, 'forgotten (an address never counted is no error)');
  t.equal(forgotten.get(vmAddress.vm2), after.get(vmAddress.vm2), 'the other VM keeps its count');
});

t.test('adding a name opens it live; removing one closes it for new connections; the table stays', async (t) => {
  const identity = await tableIdentity();
  t.equal(await browse(NS.vm1, 'late.test'), 'resolve ENOTFOUND', 'not yet whitelisted');

  const echo = new EchoSession(NS.vm1, HOSTS.allowed, ECHO_PORT);
  t.equal(await echo.next(), 'connected', 'a connection to allowed.test, open from before');
  t.equal(await echo.say('one'), 'echo one');

  const added = whitelist('allowed.test', '*.wild.test', 'late.test');
  await changeWhitelist(current, added);
  current = added;
  t.equal(await browse(NS.vm1, 'late.test'), `host ${HOSTS.late} from 198.51.100.1`, 'added: resolves and answers');
  t.equal(await browse(NS.vm2, 'late.test'), `host ${HOSTS.late} from 198.51.100.1`, 'for every VM');
  t.equal(await tableIdentity(), identity, 'the table, its chains, rules and sets are the same objects');

  const removed = whitelist('*.wild.test', 'late.test');
  await changeWhitelist(current, removed);
  current = removed;
  t.same(await resolve(NS.vm1, 'allowed.test'), { error: 'ENOTFOUND' }, 'removed: no longer resolves');
  t.equal(await get(NS.vm1, HOSTS.allowed), 'error timeout', 'and a new connection to its address is dropped (learnt addresses forgotten)');
  t.equal(await echo.say('two'), 'echo two', 'the connection from before carries on');
  t.equal(await tableIdentity(), identity, 'still the same table');
  t.equal(await browse(NS.vm1, 'late.test'), `host ${HOSTS.late} from 198.51.100.1`, 'a name still listed is learnt again at its next lookup');
  await echo.close();
});

t.test('a range opens and closes live, leaving learnt addresses alone', async (t) => {
  const learnt = await setElements('resolved4');
  t.equal(await get(NS.vm1, HOSTS.raw), 'error timeout');
  const withRange = whitelist(...['*.wild.test', 'late.test', HOSTS.raw]);
  await changeWhitelist(current, withRange);
  current = withRange;
  t.same(await setElements('allow4'), [HOSTS.raw]);
  t.equal(await get(NS.vm1, HOSTS.raw), `host ${HOSTS.raw} from 198.51.100.1`, 'opened by address');
  t.same(await setElements('resolved4'), learnt, 'resolved4 untouched by a range change');
  const without = whitelist('*.wild.test', 'late.test');
  await changeWhitelist(current, without);
  current = without;
  t.equal(await get(NS.vm1, HOSTS.raw), 'error timeout', 'closed again');
});

t.test('bad entries are refused with a message, and nothing is half-applied', async (t) => {
  const withRange = whitelist('*.wild.test', 'late.test', HOSTS.raw);
  await changeWhitelist(current, withRange);
  current = withRange;
  const allowBefore = await setElements('allow4');
  const learntBefore = await setElements('resolved4');
  const identity = await tableIdentity();

  t.throws(() => whitelist('*.wild.test', '*.com', '198.51.100.0/24', '127.0.0.1'), {
    code: 'invalid-argument',
    message: /entry 2: "\*\.com" would open a whole top-level domain.*entry 4: "127\.0\.0\.1" overlaps 127\.0\.0\.0\/8/,
  });
  for (const allow of [[HOSTS.raw, '198.51.100.0/25', '127.0.0.1'], [HOSTS.raw, STATION], [HOSTS.raw, '10.88.0.0/16'], [HOSTS.raw, '198.51.100.7/24']]) {
    const err = await network.setWhitelist({ ...spec(current), allow }).catch((e: unknown) => e);
    t.ok(err instanceof TabulaError && err.code === 'invalid-argument', `${allow.join(' ')}: ${(err as Error).message}`);
  }
  // Refused by nft: a table that is not there.
  const nftErr = await network.setWhitelist({ ...spec(current), table: `${TABLE}_none` }).catch((e: unknown) => e);
  t.ok(nftErr instanceof TabulaError && nftErr.code === 'firewall-failed', `a missing table: ${(nftErr as Error).message}`);
  // Refused in the middle of the transaction, after allow4 was flushed and refilled: all of it rolled back.
  const document = renderWhitelistUpdate({ ...spec(current), allow: ['198.51.100.128/25'] }, { forgetResolved: true });
  document.nftables.push({ flush: { set: { family: 'inet', table: TABLE, name: 'no_such_set' } } });
  const file = join(dir, 'half.json');
  await writeFile(file, JSON.stringify(document));
  await t.rejects(inNs(NS.server, 'nft', '-j', '-f', file), 'nft refuses the transaction');
  t.same(await setElements('allow4'), allowBefore, 'allow4 unchanged');
  t.same(await setElements('resolved4'), learntBefore, 'resolved4 unchanged');
  t.equal(await tableIdentity(), identity, 'the table unchanged');
  t.equal(await get(NS.vm1, HOSTS.raw), `host ${HOSTS.raw} from 198.51.100.1`, 'and still working');
});

t.test('a learnt address stays open while in use and expires when unused', async (t) => {
  // Re-applying the table replaces it: learnt addresses and counters start afresh.
  await network.apply(spec(current, { resolvedTimeout: 3 }));
  t.same(await setElements('resolved4'), [], 'apply starts resolved4 afresh');
  t.same([...(await network.blockedCounts(TABLE))], [], 'and the counters');
  t.same(await resolve(NS.vm1, 'sub.wild.test'), { addresses: [HOSTS.sub] });
  for (let i = 0; i < 4; i++) {
    t.equal(await get(NS.vm1, HOSTS.sub), `host ${HOSTS.sub} from 198.51.100.1`, `in use after ${i + 1} s`);
    await sleep(1000);
  }
  t.ok((await setElements('resolved4')).includes(HOSTS.sub), 'each new connection restarted its timeout (3 s)');
  await sleep(3500);
  t.notOk((await setElements('resolved4')).includes(HOSTS.sub), 'unused for longer than the timeout: gone');
  t.equal(await get(NS.vm1, HOSTS.sub), 'error timeout', 'a VM that kept the old answer is turned away');
  t.equal(await browse(NS.vm1, 'sub.wild.test'), `host ${HOSTS.sub} from 198.51.100.1`, 'until it looks the name up again');
});

t.test('remove deletes the table, and an absent table is no error', async (t) => {
  await network.remove(TABLE);
  t.notMatch(await inNs(NS.server, 'nft', 'list', 'tables'), new RegExp(`\\b${TABLE}\\b`));
  await t.resolves(network.remove(TABLE));
  await t.rejects(network.blockedCounts(TABLE), { code: 'firewall-failed' }, 'no table, no counts');
});

t.test('the test leaves nothing behind', async (t) => {
  await teardownWorld();
  t.notMatch(await sh('nft', 'list', 'tables'), new RegExp(`\\b${TABLE}\\b`), 'no table on the host');
  const namespaces = await sh('ip', 'netns', 'list');
  for (const ns of Object.values(NS)) t.notMatch(namespaces, new RegExp(`^${ns}\\b`, 'm'), `no namespace ${ns}`);
  t.notMatch(await sh('ip', '-o', 'link'), new RegExp(`(tbr|tv)-${ID}`), 'no link on the host');
  t.same(
    spawned.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => c.pid),
    [],
    'no helper process',
  );
});
