#!/usr/bin/env node
// make bench (part 2): hand-off latency with a warm pool, on a real station
// LAN (bridge + station namespace) and the test golden image under TCG.
//  - request → "RULE ADDED, CONNECT NOW": a station asks while a VM is clean;
//    most hand-offs are not taken up (the VM goes back to clean after
//    connect_wait), every 10th is, so VMs are recycled in between.
//  - request → session established: the station connects through its forward
//    and the supervisor has recorded the session.
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { benchImage, SUPERVISOR } from './bench-image.js';

const run = promisify(execFile);
const REQUESTS = Number(process.env['TABULA_BENCH_HANDOFFS'] ?? 200);
const LAN = 'tbr-bench';
const NS = 'tabula-bench-st';
const TABLE = 'tabula_bench';
const CONSOLE_IF = 'tabula-bench-c';

// The station's side, inside its namespace: one request per input line; prints
// "<ms to the line> <ms to established or ->" per request.
const STATION = `
import socket, sys, time
take = False
for cmd in sys.stdin:
    take = cmd.strip() == "take"
    t0 = time.monotonic()
    s = socket.create_connection(("169.254.24.1", 5905), timeout=60)
    f = s.makefile("rb")
    line = f.readline()
    t1 = time.monotonic()
    est = "-"
    if b"RULE ADDED, CONNECT NOW" in line and take:
        c = socket.create_connection(("169.254.24.1", 5906), timeout=10)
        est = "%.1f" % ((time.monotonic() - t0) * 1000)
        print("%.1f %s" % ((t1 - t0) * 1000, est), flush=True)
        sys.stdin.readline()   # hold the session until told to leave
        c.close()
    else:
        print("%.1f %s" % ((t1 - t0) * 1000, est), flush=True)
    s.close()
`;

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function lanUp(): Promise<void> {
  await run('ip', ['link', 'add', LAN, 'type', 'bridge']);
  await run('ip', ['addr', 'add', '169.254.24.1/24', 'dev', LAN]);
  await run('ip', ['link', 'set', LAN, 'up']);
  await run('ip', ['netns', 'add', NS]);
  await run('ip', ['link', 'add', 'tv-bench', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS]);
  await run('ip', ['link', 'set', 'tv-bench', 'master', LAN, 'up']);
  await run('ip', ['-n', NS, 'addr', 'add', '169.254.24.10/24', 'dev', 'eth0']);
  await run('ip', ['-n', NS, 'link', 'set', 'eth0', 'up']);
}

async function lanDown(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'pids', NS]).catch(() => ({ stdout: '' }));
  for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
  for (const cmd of [['netns', 'del', NS], ['link', 'del', 'tv-bench'], ['link', 'del', LAN], ['link', 'del', CONSOLE_IF]]) await run('ip', cmd).catch(() => undefined);
  await run('nft', ['delete', 'table', 'inet', TABLE]).catch(() => undefined);
}

async function main(): Promise<void> {
  const image = await benchImage();
  const dir = image.dir;
  const config = join(dir, 'supervisor.toml');
  const pool = (size: number) => image.pool(size, ['console_tickets = false']);
  const writeConfig = (size: number) =>
    writeFile(config, ['[supervisor]', `state_dir = "${dir}/state"`, 'hypervisor = "qemu"', '', '[stations]', `interface = "${LAN}"`, `nft_table = "${TABLE}"`,
      `console_interface = "${CONSOLE_IF}"`, 'connect_wait = 1', 'forward_grace = 1', '', ...pool(size)].join('\n') + '\n');
  await lanUp();
  await writeConfig(2);
  const lines: string[] = [];
  const sup = spawn(process.execPath, [SUPERVISOR, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [sup.stdout, sup.stderr]) s.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n')));
  const station = spawn('ip', ['netns', 'exec', NS, 'python3', '-u', '-c', STATION], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers: string[] = [];
  station.stdout.setEncoding('utf8').on('data', (d: string) => answers.push(...d.split('\n').filter(Boolean)));
  const until = async (what: string, ok: () => boolean, ms = 180_000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const cleanNow = () => {
    // A VM is clean again after the last hand-off settled one way or the other.
    const st = [...lines].reverse().find((l) => /event=(vm-clean|handoff-not-taken|vm-handed-out)/.test(l));
    return st !== undefined && !/vm-handed-out/.test(st);
  };
  try {
    await until('2 clean', () => lines.filter((l) => l.includes('event=vm-clean')).length >= 2);
    const toLine: number[] = [];
    const toSession: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      await until('a clean VM', cleanNow);
      const take = i % 10 === 9;
      station.stdin.write(take ? 'take\n' : 'ask\n');
      await until('the answer', () => answers.length > i);
      const [line, est] = (answers[i] as string).split(' ');
      toLine.push(Number(line));
      if (take) {
        toSession.push(Number(est));
        station.stdin.write('leave\n');
      }
      // An untaken hand-off returns its VM after connect_wait; a taken one is recycled.
      const settled = lines.length;
      await until('hand-off settled', () => lines.slice(settled - 5).some((l) => /event=(handoff-not-taken|session-connected) /.test(l)), 30_000);
    }
    console.log(`Tabula hand-off benchmark (warm pool of 2, TCG, ${REQUESTS} requests, every 10th taken up and its VM recycled)`);
    console.log(`${'request to CONNECT NOW line'.padEnd(30)} p50 ${pct(toLine, 50).toFixed(1).padStart(7)} ms   p99 ${pct(toLine, 99).toFixed(1).padStart(7)} ms   n=${toLine.length}`);
    console.log(`${'request to session established'.padEnd(30)} p50 ${pct(toSession, 50).toFixed(1).padStart(7)} ms   p95 ${pct(toSession, 95).toFixed(1).padStart(7)} ms   n=${toSession.length}`);
  } finally {
    station.kill('SIGKILL');
    await writeConfig(0);
    const from = lines.length;
    sup.kill('SIGHUP');
    const gone = (slot: number) => lines.slice(from).some((l) => l.includes(`event=vm-undefined step=undefine-vm pool=bench vm=tabula-bench-${slot} `));
    await until('pool removed', () => gone(0) && gone(1), 60_000).catch(() => undefined);
    sup.kill('SIGTERM');
    await new Promise((r) => sup.once('exit', r));
    const { stdout } = await run('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name']);
    for (const d of stdout.split('\n').filter((n) => n.startsWith('tabula-bench-'))) {
      await run('virsh', ['-c', 'qemu:///system', 'destroy', d]).catch(() => undefined);
      await run('virsh', ['-c', 'qemu:///system', 'undefine', d]).catch(() => undefined);
    }
    await lanDown();
    await image.remove();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
