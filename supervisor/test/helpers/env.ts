import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const REPO = resolve(import.meta.dirname, '../../..');
export const BUILD = process.env['TABULA_BUILD'] ?? join(REPO, 'build');
export const GOLDEN_DIR = join(BUILD, 'test-golden');
export const SUPERVISOR = join(REPO, 'supervisor/dist/main.js');
export const TABULACTL = join(REPO, 'supervisor/dist/cli/tabulactl.js');
/** Every name a test creates starts with this, so the leak check can find them all. */
export const TEST_PREFIX = 'it';

export interface TestRoot {
  readonly dir: string;
  readonly golden: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
  cleanup(): Promise<void>;
}

/**
 * A private directory with its own copy of the test golden image, readable by
 * QEMU (which runs as another user): nothing a test does touches the build.
 */
export async function makeTestRoot(name: string): Promise<TestRoot> {
  const dir = await mkdtemp(join(tmpdir(), `tabula-${TEST_PREFIX}-${name}-`));
  await chmod(dir, 0o711);
  const golden = join(dir, 'golden.qcow2');
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.img');
  await copyFile(join(GOLDEN_DIR, 'golden.qcow2'), golden);
  await copyFile(join(GOLDEN_DIR, 'vmlinuz'), kernel);
  await copyFile(join(GOLDEN_DIR, 'initrd.img'), initrd);
  const cmdline = (await readFile(join(GOLDEN_DIR, 'cmdline'), 'utf8')).trim();
  return { dir, golden, kernel, initrd, cmdline, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface PoolOptions {
  readonly name: string;
  readonly size: number;
  readonly spicePortBase: number;
  readonly golden?: string;
  readonly bootTimeout?: number;
  /** Pools for seed-style (v0) stations run without Spice tickets. */
  readonly consoleTickets?: boolean;
  /** More `key = value` lines for the pool's section. */
  readonly extra?: readonly string[];
}

/** A supervisor config for the test golden image under software emulation. */
export function testConfig(root: TestRoot, pools: readonly PoolOptions[], extra = ''): string {
  return [
    '[supervisor]',
    `state_dir = "${root.dir}/state"`,
    'hypervisor = "qemu"',
    'heartbeat = 2',
    extra,
    ...pools.flatMap((p) => [
      '',
      '[[pool]]',
      `name = "${p.name}"`,
      `golden_image = "${p.golden ?? root.golden}"`,
      `size = ${p.size}`,
      'vcpus = 1',
      'memory = 192',
      'video = "vga"',
      `spice_port_base = ${p.spicePortBase}`,
      `boot_timeout = ${p.bootTimeout ?? 90}`,
      ...(p.consoleTickets === undefined ? [] : [`console_tickets = ${p.consoleTickets}`]),
      `kernel = "${root.kernel}"`,
      `initrd = "${root.initrd}"`,
      `cmdline = "${root.cmdline}"`,
      ...(p.extra ?? []),
    ]),
  ].join('\n');
}

export async function writeConfig(root: TestRoot, text: string, file = 'supervisor.toml'): Promise<string> {
  const path = join(root.dir, file);
  await writeFile(path, text + '\n');
  return path;
}

export async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Polls `probe` until it returns a value other than undefined. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
