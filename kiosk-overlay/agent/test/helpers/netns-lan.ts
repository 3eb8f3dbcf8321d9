// A station LAN of network namespaces for the station firewall's tests: the
// server's namespace holds a bridge, every other host hangs on it by a veth;
// small probe programs run inside the namespaces and say what got through.
// Deleting the namespaces removes every link, so nothing outlives `remove`.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, waitFor } from '../../../../supervisor/test/helpers/env.js';
import { STATION_TABLE } from '../../src/render/station-firewall.js';

/** The LAN's addresses: the server, another host, the station (its DHCP reservation too). */
export const SERVER_IP = '169.254.24.1';
export const OTHER_IP = '169.254.24.2';
export const STATION_IP = '169.254.24.50';

/** A dropped SYN or datagram is given this long: the answer on a veth takes well under a millisecond. */
export const PROBE_MS = 1000;
/** A dropped packet: either nothing came back in time, or the station's own output chain refused to send it. */
export const BLOCKED = /^(timeout|error:EPERM)$/;

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
} else if (cmd === 'http') {
  // http URL MS: open (an HTTP answer came, any status), timeout or error:CODE.
  const [url, ms] = a;
  fetch(url, { signal: AbortSignal.timeout(Number(ms)) }).then(
    () => finish('open'),
    (e) => finish(e.name === 'TimeoutError' ? 'timeout' : 'error:' + (e.cause?.code ?? e.message)),
  );
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

export interface LanHost {
  readonly ns: string;
  /** The veth's end on the bridge, in the server's namespace. */
  readonly port: string;
  readonly ip4: string;
  readonly ip6?: string;
}

export interface LanSpec {
  /** The test's private directory (`mkdtemp` of `${prefix}-…`); stale ones of the same prefix are removed. */
  readonly dir: string;
  readonly prefix: string;
  readonly server: { readonly ns: string; readonly ip4: string; readonly ip6?: string };
  readonly hosts: readonly LanHost[];
}

export interface Started {
  readonly lines: string[];
  readonly proc: ChildProcess;
}

export class NetnsLan {
  readonly probeFile: string;
  readonly #children: ChildProcess[] = [];

  constructor(readonly spec: LanSpec) {
    this.probeFile = join(spec.dir, 'probe.mjs');
  }

  get spaces(): string[] {
    return [this.spec.server.ns, ...this.spec.hosts.map((h) => h.ns)];
  }

  /** The namespaces, the bridge (with the server's addresses), each host's veth and addresses. */
  async make(): Promise<void> {
    // A run killed half-way (a tap timeout) may have left its namespaces and directory.
    await this.removeSpaces();
    const stale = (await readdir(tmpdir())).filter((d) => d.startsWith(`${this.spec.prefix}-`) && join(tmpdir(), d) !== this.spec.dir);
    for (const d of stale) await rm(join(tmpdir(), d), { recursive: true, force: true });
    await writeFile(this.probeFile, PROBE);
    for (const ns of this.spaces) {
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const { ns: server, ip4, ip6 } = this.spec.server;
    await run('ip', ['-n', server, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', server, 'addr', 'add', `${ip4}/24`, 'dev', 'br0']);
    if (ip6 !== undefined) await run('ip', ['-n', server, 'addr', 'add', `${ip6}/64`, 'dev', 'br0', 'nodad']);
    await run('ip', ['-n', server, 'link', 'set', 'br0', 'up']);
    for (const h of this.spec.hosts) {
      await run('ip', ['-n', server, 'link', 'add', h.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      await run('ip', ['-n', server, 'link', 'set', h.port, 'master', 'br0', 'up']);
      await run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip4}/24`, 'dev', 'eth0']);
      if (h.ip6 !== undefined) await run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip6}/64`, 'dev', 'eth0', 'nodad']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    }
  }

  /** `make`, then `setup` (the LAN's services); whatever fails half-way removes what was made before the error goes on. */
  async makeWith<T>(setup: () => Promise<T>): Promise<T> {
    try {
      await this.make();
      return await setup();
    } catch (e) {
      await this.remove();
      throw e;
    }
  }

  /** Every process started here or still in the namespaces killed, the namespaces and the directory removed. */
  async remove(): Promise<void> {
    await this.removeSpaces();
    await rm(this.spec.dir, { recursive: true, force: true });
  }

  async removeSpaces(): Promise<void> {
    for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const ns of this.spaces) {
      // Whatever still runs in our own namespaces was started by this test.
      const { stdout } = await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }));
      for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  }

  /** A long-running program in `ns`; resolves once it printed `ready` (or at once when `ready` is false). */
  async start(ns: string, args: string[], ready = true): Promise<Started> {
    const proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#children.push(proc);
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

  /** The probe's echo servers (`tcp:P`, `udp:P`, `udpq:P`) in `ns`. */
  serve(ns: string, ...specs: string[]): Promise<Started> {
    return this.start(ns, ['node', this.probeFile, 'serve', ...specs]);
  }

  async probe(ns: string, ...args: string[]): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', ns, 'node', this.probeFile, ...args], { timeout: 15_000 });
    return stdout.trim();
  }

  tcp(ns: string, host: string, port: number): Promise<string> {
    return this.probe(ns, 'tcp', host, String(port), String(PROBE_MS));
  }

  /** An HTTP GET of `url` from `ns`: 'open' when any answer came. */
  http(ns: string, url: string): Promise<string> {
    return this.probe(ns, 'http', url, String(PROBE_MS));
  }

  udp(ns: string, host: string, port: number): Promise<string> {
    return this.probe(ns, 'udp', host, String(port), String(PROBE_MS));
  }

  udpSend(ns: string, host: string, port: number, saddr: string, sport: number, text: string): Promise<string> {
    return this.probe(ns, 'udp-send', host, String(port), saddr, String(sport), text);
  }

  ping(ns: string, host: string): Promise<boolean> {
    return run('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '1', host], { timeout: 10_000 }).then(
      () => true,
      () => false,
    );
  }

  /** The station table's rules in `ns`: `chain/comment` → packets counted (rules without a counter: -1). */
  async counters(ns: string): Promise<Record<string, number>> {
    const { stdout } = await run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', STATION_TABLE]);
    const doc = JSON.parse(stdout) as { nftables: Array<{ rule?: { chain: string; comment?: string; expr: Array<Record<string, unknown>> } }> };
    const out: Record<string, number> = {};
    for (const { rule } of doc.nftables) {
      if (rule?.comment === undefined) continue;
      const counter = rule.expr.find((e) => 'counter' in e)?.['counter'] as { packets: number } | undefined;
      out[`${rule.chain}/${rule.comment}`] = counter?.packets ?? -1;
    }
    return out;
  }

  /** Empties the conntrack table of `ns`: the next packet of any flow is judged as new. */
  async forgetConnections(ns: string): Promise<void> {
    await run('ip', ['netns', 'exec', ns, 'conntrack', '-F'], { timeout: 10_000 });
  }
}

/**
 * Waits until `lines` has one matching `re` (a datagram that arrived); false after `ms`,
 * or as soon as `proc` is gone. What must not arrive is given PROBE_MS.
 */
export async function arrives(lines: string[], re: RegExp, ms = 5_000, proc?: ChildProcess): Promise<boolean> {
  const seen = async () => (lines.some((l) => re.test(l)) ? true : proc !== undefined && proc.exitCode !== null ? false : undefined);
  return waitFor('a line', seen, ms, 20).catch(() => false);
}

/** A regular expression matching exactly the line `text`. */
export function exactly(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}
