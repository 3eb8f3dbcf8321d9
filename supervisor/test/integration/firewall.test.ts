// The station firewall against the real kernel. The "server" is a network
// namespace of its own: a station LAN bridge, two station namespaces on it, the
// console address on an interface of its own, stand-in consoles, and Tabula's
// table applied there through nft. A namespace rather than the host's own
// stack, because the addresses are the appliance's fixed ones, and any other
// user of them on the same machine (a demo, another test) must neither disturb
// nor be disturbed by this one. Everything is created here and removed by the
// last subtest, which checks that nothing is left.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import t from 'tap';
import { ConntrackTool } from '../../src/adapters/conntrack.js';
import { NftFirewall } from '../../src/adapters/nft-firewall.js';
import type { FirewallSpec } from '../../src/domain/firewall.js';
import { TabulaError } from '../../src/domain/errors.js';
import { run, TEST_PREFIX } from '../helpers/env.js';

const TABLE = `tabula_${TEST_PREFIX}_fw`;
const SERVER = `tabula-${TEST_PREFIX}-fw-srv`;
const BRIDGE = `${TEST_PREFIX}-fw-lan`;
const CONSOLE_LINK = `${TEST_PREFIX}-fw-con`;
const LAN = '169.254.24.1';
const CONSOLE = '169.254.25.1';
const SPICE = 5906;
const LOOPBACK_PORT = 5999;
const STATIONS = {
  a: { ns: `tabula-${TEST_PREFIX}-fw-a`, link: `${TEST_PREFIX}-fw-a`, peer: `${TEST_PREFIX}-fw-a-st`, address: '169.254.24.10' },
  b: { ns: `tabula-${TEST_PREFIX}-fw-b`, link: `${TEST_PREFIX}-fw-b`, peer: `${TEST_PREFIX}-fw-b-st`, address: '169.254.24.11' },
} as const;
type Station = (typeof STATIONS)[keyof typeof STATIONS];
const A = STATIONS.a;
const B = STATIONS.b;
/** Every network probe gives up after this; a dropped SYN shows up as `timeout`. */
const PROBE_MS = 1500;

const IN_SERVER = ['ip', 'netns', 'exec', SERVER];
const firewall = new NftFirewall({ command: [...IN_SERVER, 'nft'] });
const conntrack = new ConntrackTool({ command: [...IN_SERVER, 'conntrack'] });

function spec(forwards: FirewallSpec['forwards'], over: Partial<FirewallSpec> = {}): FirewallSpec {
  return {
    table: TABLE,
    lanInterface: BRIDGE,
    lanAddress: LAN,
    spicePort: SPICE,
    consoleAddress: CONSOLE,
    consolePorts: [{ from: 5920, to: 5923 }],
    forwards,
    ...over,
  };
}

async function sh(cmd: string, ...args: string[]): Promise<string> {
  return (await run(cmd, args, { timeout: 10_000 })).stdout;
}

function inNs(ns: string, cmd: string, ...args: string[]): Promise<string> {
  return sh('ip', 'netns', 'exec', ns, cmd, ...args);
}

function inServer(cmd: string, ...args: string[]): Promise<string> {
  return inNs(SERVER, cmd, ...args);
}

// ---- the world ---------------------------------------------------------------------------------

let consoleLinkType = '';

async function teardownWorld(): Promise<void> {
  // The server's links, table and conntrack entries go with its namespace.
  for (const ns of [SERVER, A.ns, B.ns]) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
}

async function buildWorld(): Promise<void> {
  for (const ns of [SERVER, A.ns, B.ns]) await sh('ip', 'netns', 'add', ns);
  await inServer('ip', 'link', 'set', 'lo', 'up');
  await inServer('ip', 'link', 'add', BRIDGE, 'type', 'bridge');
  await inServer('ip', 'addr', 'add', `${LAN}/24`, 'dev', BRIDGE);
  await inServer('ip', 'link', 'set', BRIDGE, 'up');
  // The consoles only need an address on an interface of their own. A kernel built without the
  // dummy driver gets a bridge without ports instead: the same to routing and netfilter.
  consoleLinkType = await inServer('ip', 'link', 'add', CONSOLE_LINK, 'type', 'dummy').then(
    () => 'dummy',
    () => inServer('ip', 'link', 'add', CONSOLE_LINK, 'type', 'bridge').then(() => 'bridge without ports'),
  );
  await inServer('ip', 'addr', 'add', `${CONSOLE}/32`, 'dev', CONSOLE_LINK);
  await inServer('ip', 'link', 'set', CONSOLE_LINK, 'up');
  for (const s of Object.values(STATIONS)) {
    await sh('ip', '-n', SERVER, 'link', 'add', s.link, 'type', 'veth', 'peer', 'name', s.peer, 'netns', s.ns);
    await inServer('ip', 'link', 'set', s.link, 'master', BRIDGE, 'up');
    await inNs(s.ns, 'ip', 'addr', 'add', `${s.address}/24`, 'dev', s.peer);
    await inNs(s.ns, 'ip', 'link', 'set', s.peer, 'up');
    await inNs(s.ns, 'ip', 'link', 'set', 'lo', 'up');
    // What a hostile station would do: try the consoles directly, through the server.
    await inNs(s.ns, 'ip', 'route', 'add', '169.254.25.0/24', 'via', LAN);
  }
}

// ---- processes inside a namespace, speaking in lines -------------------------------------------

const spawned: ChildProcessWithoutNullStreams[] = [];

class Child {
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(ns: string, script: string, args: string[], onLine?: (line: string) => boolean) {
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...args], { env });
    spawned.push(this.child);
    this.child.stderr.pipe(process.stderr);
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      if (onLine?.(l) === true) return;
      this.lines.push(l);
      this.waiter?.();
    });
  }

  /**
   * The next line, or `no-answer` when the child itself hangs. Generous: the child's own
   * network timeouts start only once Node is up in the namespace, slow on a busy machine.
   */
  async next(): Promise<string> {
    const deadline = Date.now() + PROBE_MS + 10_000;
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

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
}

// Stand-in consoles, one per `host,port,banner` argument: a banner, then an echo of each line.
// Reports `listening` once all are bound and `peer PORT ADDRESS` for each connection.
const CONSOLES = `
const net = require('node:net');
const out = (l) => process.stdout.write(l + '\\n');
const specs = process.argv.slice(1);
let pending = specs.length;
for (const spec of specs) {
  const [host, port, banner] = spec.split(',');
  const server = net.createServer((socket) => {
    out('peer ' + port + ' ' + socket.remoteAddress);
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    socket.write(banner + '\\n');
    let buf = '';
    socket.on('data', (d) => { buf += d; for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) { socket.write(banner + ' echo ' + buf.slice(0, i) + '\\n'); buf = buf.slice(i + 1); } });
  });
  server.on('error', (e) => { out('error ' + e.code); process.exit(1); });
  server.listen({ host, port: Number(port) }, () => { if (--pending === 0) out('listening'); });
}
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => process.exit(0));
`;

// A TCP client: reports `connected PORT`, `data LINE`, `error CODE +MSms` (time since the
// attempt began), `timeout` (no connection within the time given) and `closed`; sends each
// stdin line; a line `end` half-closes.
const CLIENT = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const out = (l) => process.stdout.write(l + '\\n');
const t0 = Date.now();
const s = net.connect({ host, port: Number(port) });
const timer = setTimeout(() => { out('timeout'); process.exit(0); }, Number(ms));
s.setEncoding('utf8');
let buf = '';
s.on('connect', () => { clearTimeout(timer); out('connected ' + s.localPort); });
s.on('data', (d) => { buf += d; for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) { out('data ' + buf.slice(0, i)); buf = buf.slice(i + 1); } });
s.on('error', (e) => { clearTimeout(timer); out('error ' + e.code + ' +' + (Date.now() - t0) + 'ms'); process.exit(0); });
s.on('close', () => { out('closed'); process.exit(0); });
let inb = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { inb += d; for (let i = inb.indexOf('\\n'); i >= 0; i = inb.indexOf('\\n')) { const l = inb.slice(0, i); inb = inb.slice(i + 1); if (l === 'end') s.end(); else s.write(l + '\\n'); } });
process.stdin.on('end', () => { s.destroy(); process.exit(0); });
`;

/** Remote addresses each console port accepted, in order. */
const peers = new Map<number, string[]>();
let consoles: Child | undefined;
const clients: Child[] = [];

async function startConsoles(): Promise<void> {
  const specs = [`${CONSOLE},5920,console-5920`, `${CONSOLE},5921,console-5921`, `127.0.0.1,${LOOPBACK_PORT},loopback`];
  consoles = new Child(SERVER, CONSOLES, specs, (line) => {
    const m = /^peer (\d+) (.*)$/.exec(line);
    if (m === null) return false;
    const list = peers.get(Number(m[1])) ?? [];
    list.push(m[2] as string);
    peers.set(Number(m[1]), list);
    return true;
  });
  const ready = await consoles.next();
  if (ready !== 'listening') throw new Error(`stand-in consoles did not start: ${ready}`);
}

function client(station: Station, host: string, port: number): Child {
  const c = new Child(station.ns, CLIENT, [host, String(port), String(PROBE_MS)]);
  clients.push(c);
  return c;
}

/** A client's line without the time it took, and that time when it has one. */
function outcome(line: string): { outcome: string; ms?: number } {
  const m = /^(.*) \+(\d+)ms$/.exec(line);
  return m === null ? { outcome: line } : { outcome: m[1] as string, ms: Number(m[2]) };
}

/** One connection attempt: `data BANNER` when something answered, else `error …` / `timeout`. */
async function probe(station: Station, host: string, port: number): Promise<{ outcome: string; ms?: number }> {
  const c = client(station, host, port);
  try {
    let line = await c.next();
    if (line.startsWith('connected ')) line = await c.next();
    return outcome(line);
  } finally {
    await c.close();
  }
}

async function session(station: Station, host: string, port: number): Promise<{ client: Child; localPort: number; banner: string }> {
  const c = client(station, host, port);
  const connected = await c.next();
  const localPort = Number(/^connected (\d+)$/.exec(connected)?.[1]);
  const banner = await c.next();
  return { client: c, localPort, banner };
}

async function counters(chain: string): Promise<number[]> {
  const doc = JSON.parse(await inServer('nft', '-j', 'list', 'chain', 'inet', TABLE, chain)) as {
    nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }>;
  };
  return doc.nftables.flatMap((o) => (o.rule === undefined ? [] : o.rule.expr.flatMap((e) => (e.counter === undefined ? [] : [e.counter.packets]))));
}

/** The table as nft lists it, without what changes by itself (counters). */
async function tableText(): Promise<string> {
  return (await inServer('nft', 'list', 'table', 'inet', TABLE)).replace(/counter packets \d+ bytes \d+/g, 'counter');
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const started = process.hrtime.bigint();
  const value = await f();
  return [value, Number(process.hrtime.bigint() - started) / 1e6];
}

async function stopProcesses(): Promise<void> {
  for (const c of clients.splice(0)) await c.close();
  await consoles?.close();
  consoles = undefined;
}

// ---- the tests ---------------------------------------------------------------------------------

t.before(async () => {
  await teardownWorld();
  await buildWorld();
  await startConsoles();
});

// A safety net for a failing run; the last subtest does the same and checks it.
t.teardown(async () => {
  await stopProcesses();
  await teardownWorld();
});

t.test('control: without the table a station with a route reaches a console directly', async (t) => {
  t.comment(`console interface: ${consoleLinkType}`);
  t.equal((await probe(A, CONSOLE, 5920)).outcome, 'data console-5920', 'so the drops below are the guard at work');
});

t.test('a forward lets its station, and only it, reach its console through the LAN address', async (t) => {
  const [, ms] = await timed(() => firewall.apply(spec([{ station: A.address, consolePort: 5920 }])));
  t.comment(`apply with one forward: ${ms.toFixed(1)} ms`);
  t.equal((await probe(A, LAN, SPICE)).outcome, 'data console-5920');
  t.equal(peers.get(5920)?.at(-1), A.address, 'the console sees the station itself');
  const b = await probe(B, LAN, SPICE);
  t.match(b.outcome, /^(error ECONNREFUSED|timeout)$/, `another station is turned away (${b.outcome})`);
  t.ok((b.ms ?? PROBE_MS) <= PROBE_MS, `and within the probe's bound (${b.ms ?? PROBE_MS} ms)`);
});

t.test('no station reaches a console directly, route or not', async (t) => {
  const before = await counters('guard');
  const attempts = [A, B].flatMap((s) => [5920, 5921].map((port) => ({ s, port })));
  const outcomes = await Promise.all(attempts.map(({ s, port }) => probe(s, CONSOLE, port)));
  attempts.forEach(({ s, port }, i) => t.equal(outcomes[i]?.outcome, 'timeout', `${s.address} → ${CONSOLE}:${port} dropped`));
  // Nothing listens on the LAN address at a console port: without the port drop this would be refused.
  t.equal((await probe(A, LAN, 5920)).outcome, 'timeout', `${A.address} → ${LAN}:5920 dropped`);
  const after = await counters('guard');
  t.ok((after[1] ?? 0) > (before[1] ?? 0), 'counted by the console-address drop');
  t.ok((after[2] ?? 0) > (before[2] ?? 0), 'counted by the console-port drop');
});

t.test('no station reaches the server loopback', async (t) => {
  // The station side of a "route 127.0.0.0/8 via the server" attack: its own kernel must allow
  // loopback destinations off-box, and its local table must not answer first.
  await inNs(A.ns, 'sysctl', '-qw', `net.ipv4.conf.${A.peer}.route_localnet=1`);
  await inNs(A.ns, 'ip', 'route', 'add', '127.0.0.0/8', 'via', LAN, 'dev', A.peer, 'table', '100');
  await inNs(A.ns, 'ip', 'rule', 'add', 'pref', '10', 'to', '127.0.0.0/8', 'lookup', '100');
  await inNs(A.ns, 'ip', 'rule', 'del', 'pref', '0', 'lookup', 'local');
  await inNs(A.ns, 'ip', 'rule', 'add', 'pref', '20', 'lookup', 'local');
  try {
    const before = await counters('early');
    t.equal((await probe(A, '127.0.0.1', LOOPBACK_PORT)).outcome, 'timeout', 'nothing answers');
    const after = await counters('early');
    t.ok((after[0] ?? 0) > (before[0] ?? 0), `the loopback drop saw the packets (${before[0]} → ${after[0]})`);
    t.same(peers.get(LOOPBACK_PORT) ?? [], [], 'the loopback listener was never reached');
    for (const conf of ['all', 'default', BRIDGE]) {
      t.equal((await inServer('sysctl', '-n', `net.ipv4.conf.${conf}.route_localnet`)).trim(), '0', `route_localnet stays off (${conf})`);
    }
  } finally {
    await inNs(A.ns, 'ip', 'rule', 'add', 'pref', '0', 'lookup', 'local');
    await inNs(A.ns, 'ip', 'rule', 'del', 'pref', '20');
    await inNs(A.ns, 'ip', 'rule', 'del', 'pref', '10');
  }
});

t.test('an established console outlives its forward; a new connection does not; kill ends it', async (t) => {
  await firewall.apply(spec([{ station: A.address, consolePort: 5920 }]));
  const { client: a, localPort, banner } = await session(A, LAN, SPICE);
  t.equal(banner, 'data console-5920');
  a.send('one');
  t.equal(await a.next(), 'data console-5920 echo one');

  const [, applyMs] = await timed(() => firewall.apply(spec([])));
  t.comment(`apply removing the forward: ${applyMs.toFixed(1)} ms`);
  t.notMatch(await tableText(), /dnat ip to/, 'the forward is gone');
  a.send('two');
  t.equal(await a.next(), 'data console-5920 echo two', 'the session still works after the forward went');
  a.send('three');
  t.equal(await a.next(), 'data console-5920 echo three');
  t.equal((await probe(A, LAN, SPICE)).outcome, 'error ECONNREFUSED', 'a new connection from the same station is refused');

  const [flows, listMs] = await timed(() => conntrack.established(CONSOLE, 5920));
  t.comment(`conntrack established: ${listMs.toFixed(1)} ms`);
  t.same(flows, [{ source: A.address, sourcePort: localPort }], 'the flow, by the console it really reaches');
  t.same(await conntrack.established(LAN, SPICE), [], 'the dialled address is not where a forwarded flow ends');
  t.same(await conntrack.established(CONSOLE, 5921), []);

  await conntrack.kill(CONSOLE, 5920, B.address);
  t.same(await conntrack.established(CONSOLE, 5920), flows, 'killing another source leaves the flow');

  const [, killMs] = await timed(() => conntrack.kill(CONSOLE, 5920, A.address));
  t.comment(`conntrack kill: ${killMs.toFixed(1)} ms`);
  t.same(await conntrack.established(CONSOLE, 5920), [], 'gone from conntrack');
  const [ended, endMs] = await timed(async () => {
    a.send('four');
    return outcome(await a.next()).outcome;
  });
  t.match(ended, /^(error ECONNRESET|closed)$/, `the station's socket is reset at its next send (${ended})`);
  t.comment(`kill → station sees it: ${endMs.toFixed(1)} ms`);
  await a.close();
  await t.resolves(conntrack.kill(CONSOLE, 5920), 'killing what is not there is no error');
});

t.test('kill while the forward is still open does not end the session', async (t) => {
  // Documents why callers remove the forward first: the next packet is picked up mid-stream
  // (nf_conntrack_tcp_loose) as a new flow, and the forward DNATs it again.
  await firewall.apply(spec([{ station: A.address, consolePort: 5920 }]));
  const { client: a, banner } = await session(A, LAN, SPICE);
  t.equal(banner, 'data console-5920');
  await conntrack.kill(CONSOLE, 5920, A.address);
  a.send('again');
  t.equal(await a.next(), 'data console-5920 echo again');
  await a.close();
  await firewall.apply(spec([]));
  await conntrack.kill(CONSOLE, 5920);
});

t.test('two forwards at once: each station reaches its own console', async (t) => {
  await firewall.apply(
    spec([
      { station: B.address, consolePort: 5921 },
      { station: A.address, consolePort: 5920 },
    ]),
  );
  t.equal((await probe(A, LAN, SPICE)).outcome, 'data console-5920');
  t.equal((await probe(B, LAN, SPICE)).outcome, 'data console-5921');
  t.equal(peers.get(5921)?.at(-1), B.address);
  const text = await tableText();
  t.match(text, `ip saddr ${A.address} ip daddr ${LAN} tcp dport ${SPICE} dnat ip to ${CONSOLE}:5920 comment "station ${A.address}"`);
  t.match(text, `ip saddr ${B.address} ip daddr ${LAN} tcp dport ${SPICE} dnat ip to ${CONSOLE}:5921 comment "station ${B.address}"`);
  t.comment(`the table as nft lists it:\n${text}`);
});

t.test('apply is one transaction: a refused one leaves the previous table', async (t) => {
  const before = await tableText();
  const err = await firewall.apply(spec([{ station: A.address, consolePort: 5921 }], { lanInterface: 'it-fw-name-far-too-long' })).catch((e: unknown) => e);
  t.ok(err instanceof TabulaError && err.code === 'firewall-failed', 'refused as firewall-failed');
  t.match((err as Error).message, /exceeds maximum length/, "with nft's own words");
  t.equal(await tableText(), before, 'refused by nft: nothing changed');
  t.equal((await probe(A, LAN, SPICE)).outcome, 'data console-5920', 'and the old forward still works');

  // Refused by the kernel halfway through (after the flush): a chain of ours already hooked elsewhere.
  await inServer('nft', 'delete', 'table', 'inet', TABLE);
  await inServer('nft', 'add', 'table', 'inet', TABLE);
  await inServer('nft', 'add', 'chain', 'inet', TABLE, 'guard', '{ type filter hook output priority 0; }');
  await inServer('nft', 'add', 'rule', 'inet', TABLE, 'guard', 'counter', 'comment', '"marker"');
  const foreign = await tableText();
  const kernelErr = await firewall.apply(spec([])).catch((e: unknown) => e);
  t.ok(kernelErr instanceof TabulaError && kernelErr.code === 'firewall-failed', 'refused as firewall-failed');
  t.equal(await tableText(), foreign, 'refused by the kernel: the flush and every add were rolled back');
  t.comment(`kernel refusal: ${(kernelErr as Error).message}`);
  await inServer('nft', 'delete', 'table', 'inet', TABLE);

  const invalid = await firewall.apply(spec([{ station: '@stations', consolePort: 5920 }])).catch((e: unknown) => e);
  t.ok(invalid instanceof TabulaError && invalid.code === 'invalid-argument', 'a station that is no address never reaches nft');
});

t.test('timings with many forwards', async (t) => {
  const forwards = Array.from({ length: 250 }, (_, i) => ({ station: `10.99.${Math.floor(i / 200)}.${(i % 200) + 1}`, consolePort: 6000 + i }));
  const many = spec(forwards, { consolePorts: [{ from: 5920, to: 5923 }, { from: 6000, to: 6249 }] });
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push((await timed(() => firewall.apply(many)))[1]);
  const rules = (await inServer('nft', 'list', 'chain', 'inet', TABLE, 'forwards')).split('\n').filter((l) => l.includes('dnat')).length;
  t.equal(rules, 250);
  t.comment(`apply with 250 forwards: ${times.map((x) => x.toFixed(1)).join(', ')} ms`);
});

t.test('remove deletes the table, and an absent table is no error', async (t) => {
  await firewall.remove(TABLE);
  t.notMatch(await inServer('nft', 'list', 'tables'), new RegExp(`\\b${TABLE}\\b`));
  await t.resolves(firewall.remove(TABLE));
});

t.test('the test leaves nothing behind', async (t) => {
  await stopProcesses();
  await teardownWorld();
  t.notMatch(await sh('nft', 'list', 'tables'), new RegExp(`\\b${TABLE}\\b`), 'no table on the host');
  const namespaces = await sh('ip', 'netns', 'list');
  for (const ns of [SERVER, A.ns, B.ns]) t.notMatch(namespaces, new RegExp(`^${ns}\\b`, 'm'), `no namespace ${ns}`);
  t.notMatch(await sh('ip', '-o', 'link'), new RegExp(`\\b${TEST_PREFIX}-fw-`), 'no link on the host');
  t.same(
    spawned.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => c.pid),
    [],
    'no helper process',
  );
});
