import { spawn, type ChildProcess } from 'node:child_process';
import { run } from './env.js';

/** A kiosk station: a network namespace on the test station LAN. */
export interface Station {
  readonly netns: string;
  readonly address: string;
  /** Runs a command inside the station; never throws, returns its exit code. */
  exec(args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts a long-running command inside the station. */
  spawn(args: string[]): ChildProcess;
  /** Kills every process in the station (a network namespace is no PID namespace: pkill would hit them all). */
  killAll(): Promise<void>;
}

export interface StationLan {
  readonly bridge: string;
  /** The server's address on the LAN (signal port, forwards). */
  readonly address: string;
  readonly stations: readonly Station[];
  /** Removes every namespace and link it made; returns the names it found still present afterwards. */
  cleanup(): Promise<string[]>;
}

/**
 * A station LAN like the seed's: a bridge on the server side with
 * 169.254.24.1/24 and `count` stations at .10, .11, … each in its own netns.
 * Names carry `id` so parallel worlds never collide (interface names ≤ 15 chars).
 */
export async function makeStationLan(id: string, count: number): Promise<StationLan> {
  const bridge = `tbr-${id}`.slice(0, 15);
  const address = '169.254.24.1';
  await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await run('ip', ['addr', 'add', `${address}/24`, 'dev', bridge]);
  await run('ip', ['link', 'set', bridge, 'up']);
  const stations: Station[] = [];
  const veths: string[] = [];
  for (let i = 0; i < count; i++) {
    const netns = `tabula-it-${id}-${i}`;
    const veth = `tv-${id}-${i}`.slice(0, 15);
    const stationAddress = `169.254.24.${10 + i}`;
    await run('ip', ['netns', 'add', netns]);
    await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await run('ip', ['link', 'set', veth, 'master', bridge, 'up']);
    await run('ip', ['-n', netns, 'addr', 'add', `${stationAddress}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
    await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    veths.push(veth);
    const killAll = async () => {
      const { stdout } = await run('ip', ['netns', 'pids', netns]).catch(() => ({ stdout: '' }));
      for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
    };
    stations.push({
      killAll,
      netns,
      address: stationAddress,
      exec: (args, timeoutMs = 30_000) =>
        run('ip', ['netns', 'exec', netns, ...args], { timeout: timeoutMs }).then(
          (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
          (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
        ),
      spawn: (args) => spawn('ip', ['netns', 'exec', netns, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }),
    });
  }
  return {
    bridge,
    address,
    stations,
    async cleanup() {
      for (const s of stations) {
        await s.killAll();
        await run('ip', ['netns', 'del', s.netns]).catch(() => undefined);
      }
      for (const v of veths) await run('ip', ['link', 'del', v]).catch(() => undefined);
      await run('ip', ['link', 'del', bridge]).catch(() => undefined);
      const { stdout: links } = await run('ip', ['-br', 'link']);
      const { stdout: spaces } = await run('ip', ['netns', 'list']);
      return [bridge, ...veths, ...stations.map((s) => s.netns)].filter((n) => links.includes(`${n}@`) || links.includes(`${n} `) || spaces.includes(n));
    },
  };
}

/** Bounded TCP probe from a station: 'open', 'refused' or 'timeout'. */
export async function probe(station: Station, host: string, port: number): Promise<'open' | 'refused' | 'timeout'> {
  const r = await station.exec(['nc', '-v', '-z', '-w', '2', host, String(port)], 10_000);
  if (r.code === 0) return 'open';
  return /refused/i.test(r.stderr) ? 'refused' : 'timeout';
}

/** The nftables table and console link the station tests give the supervisor (never the real ones). */
export const TEST_TABLE = 'tabula_it';
export const TEST_CONSOLE_IF = 'tabula-it-con';

/** A `[stations]` config section for a test LAN. */
export function stationsSection(lan: StationLan, connectWait: number, forwardGrace = 2): string {
  return [
    '[stations]',
    `interface = "${lan.bridge}"`,
    `nft_table = "${TEST_TABLE}"`,
    `console_interface = "${TEST_CONSOLE_IF}"`,
    `connect_wait = ${connectWait}`,
    `forward_grace = ${forwardGrace}`,
    // Test stations have their addresses already; station-lan-dhcp.test.ts runs the real DHCP and NTP.
    'dhcp = false',
    'ntp = false',
  ].join('\n');
}

/**
 * Removes what the supervisor made for the station LAN (its table and console
 * link) and the LAN itself; throws if any of the LAN is still there.
 */
export async function removeStationWorld(lan: StationLan): Promise<void> {
  await run('nft', ['delete', 'table', 'inet', TEST_TABLE]).catch(() => undefined);
  await run('ip', ['link', 'del', TEST_CONSOLE_IF]).catch(() => undefined);
  const left = await lan.cleanup();
  if (left.length > 0) throw new Error(`station LAN not removed: ${left.join(', ')}`);
}
