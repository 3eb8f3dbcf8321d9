#!/usr/bin/env node
// make bench: how fast the pool refills and how much memory the supervisor
// needs, on the test golden image under software emulation. Prints figures;
// asserts nothing (speed goals are read, not enforced by tests).
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { call } from '../adapters/dbus/call.js';
import { connectSystemBus } from '../adapters/dbus/connect.js';
import { BUS_NAME, ROOT_IFACE, ROOT_PATH } from '../api/dbus/names.js';
import { benchImage, SUPERVISOR } from './bench-image.js';

const RECYCLES = Number(process.env['TABULA_BENCH_RECYCLES'] ?? 12);
const POOL = 'bench';

interface Line {
  readonly at: number;
  readonly text: string;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function figure(name: string, values: number[], unit: string): void {
  const f = (v: number) => (unit === 'ms' ? (v / 1000).toFixed(2) + ' s' : `${v} ${unit}`);
  console.log(`${name.padEnd(28)} p50 ${f(percentile(values, 50)).padStart(9)}   p95 ${f(percentile(values, 95)).padStart(9)}   n=${values.length}`);
}

async function main(): Promise<void> {
  const image = await benchImage();
  const dir = image.dir;
  const configPath = join(dir, 'supervisor.toml');
  const writeConfig = (size: number) =>
    writeFile(
      configPath,
      [
        '[supervisor]',
        `state_dir = "${dir}/state"`,
        'hypervisor = "qemu"',
        'max_parallel_boots = 2',
        ...image.pool(size),
      ].join('\n') + '\n',
    );
  await writeConfig(1);

  const lines: Line[] = [];
  const child = spawn(process.execPath, [SUPERVISOR, '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  for (const s of [child.stdout, child.stderr]) {
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push({ at: performance.now(), text: buf.slice(0, i) });
        buf = buf.slice(i + 1);
      }
    });
  }
  const waitLine = async (pattern: RegExp, after: number, timeoutMs = 180_000): Promise<Line> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = lines.find((l) => l.at >= after && pattern.test(l.text));
      if (hit) return hit;
      if (performance.now() > deadline) throw new Error(`bench: no ${pattern} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const bus = await connectSystemBus();
  try {
    const vm = `tabula-${POOL}-0`;
    await waitLine(new RegExp(`event=vm-clean .*vm=${vm}`), 0);
    const recycle: number[] = [];
    for (let i = 0; i < RECYCLES; i++) {
      const t0 = performance.now();
      await call(bus, { destination: BUS_NAME, path: ROOT_PATH, interface: ROOT_IFACE, member: 'RecycleVm', signature: 's', body: [vm] }, 30_000);
      const done = await waitLine(new RegExp(`event=vm-clean .*vm=${vm}`), t0);
      recycle.push(done.at - t0);
    }
    const cloneToClean = lines.map((l) => /clone_to_clean_ms=(\d+)/.exec(l.text)?.[1]).filter((x): x is string => x !== undefined).map(Number);

    // Memory with a pool of 4, once it has settled.
    await writeConfig(4);
    const t4 = performance.now();
    child.kill('SIGHUP');
    await waitLine(/event=config-reloaded/, t4);
    for (let slot = 1; slot < 4; slot++) await waitLine(new RegExp(`event=vm-clean .*vm=tabula-${POOL}-${slot}`), t4);
    await new Promise((r) => setTimeout(r, 3000));
    const rss: number[] = [];
    for (let i = 0; i < 5; i++) {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      rss.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN));
      await new Promise((r) => setTimeout(r, 500));
    }

    console.log(`Tabula pool benchmark (test golden image, TCG, ${RECYCLES} recycles of one VM)`);
    figure('clone-to-clean', cloneToClean, 'ms');
    figure('recycle (request to clean)', recycle, 'ms');
    console.log(`${'supervisor RSS, pool of 4'.padEnd(28)} ${(Math.max(...rss) / 1024).toFixed(1)} MiB`);

    await writeConfig(0);
    const t0 = performance.now();
    child.kill('SIGHUP');
    await waitLine(/event=config-reloaded/, t0);
    for (let slot = 0; slot < 4; slot++) await waitLine(new RegExp(`event=vm-undefined .*vm=tabula-${POOL}-${slot}`), t0, 60_000);
  } finally {
    bus.disconnect();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await image.remove();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
