// A kiosk for integration tests: a test kiosk account, the station agent as a
// real process in a station's network namespace, and what the account runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, run } from '../../../../supervisor/test/helpers/env.js';

export const AGENT = join(REPO, 'kiosk-overlay/agent/dist/main.js');
export const SCREEN_PROGRAM = join(REPO, 'kiosk-overlay/agent/screen/screen.js');

export interface KioskAccount {
  readonly name: string;
  readonly uid: number;
  readonly home: string;
  remove(): Promise<void>;
}

/** A system account for the kiosk's programs, named `tabula-it-…` so the leak check finds a forgotten one. */
export async function createKioskAccount(name: string, home: string): Promise<KioskAccount> {
  await run('userdel', [name]).catch(() => undefined);
  await run('useradd', ['--system', '--no-create-home', '--home-dir', home, '--shell', '/usr/sbin/nologin', '--user-group', name]);
  const uid = Number((await run('id', ['-u', name])).stdout.trim());
  await mkdir(home, { recursive: true, mode: 0o700 });
  await run('chown', [`${name}:${name}`, home]);
  return {
    name,
    uid,
    home,
    async remove() {
      await run('pkill', ['-9', '-u', String(uid)]).catch(() => undefined);
      await run('userdel', [name]).catch(() => undefined);
    },
  };
}

export interface KioskProcess {
  readonly pid: number;
  readonly comm: string;
  readonly cmdline: string;
}

/** Every live process of `uid`, by real or effective uid (as the agent finds them). */
export async function processesOf(uid: number): Promise<KioskProcess[]> {
  const out: KioskProcess[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const status = await readFile(`/proc/${e}/status`, 'utf8').catch(() => '');
    const m = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    if (!m || (Number(m[1]) !== uid && Number(m[2]) !== uid) || /^State:\s+Z/m.test(status)) continue;
    const cmdline = (await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ').trim();
    out.push({ pid: Number(e), comm: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?', cmdline });
  }
  return out;
}

/** A station.conf from key=value pairs. */
export async function writeStationConf(path: string, keys: Readonly<Record<string, string | number | boolean>>): Promise<string> {
  const text = Object.entries(keys).map(([k, v]) => `${k}=${typeof v === 'boolean' ? (v ? 'yes' : 'no') : v}`);
  await writeFile(path, ['# written by a test', ...text, ''].join('\n'));
  return path;
}

/**
 * The station agent, as the image runs it (as root), inside a station's
 * network namespace; its journal lines are kept for the test to wait on.
 */
export class AgentProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;
  #waiters = new Set<() => void>();

  constructor(netns: string, config: string, stateDir: string, env: NodeJS.ProcessEnv = {}) {
    // The host's own DHCP leases and boot medium stay out of the test: paths that do not exist.
    const none = join(stateDir, 'none');
    const args = ['--config', config, '--card-config', join(none, 'station.conf'), '--lease-dir', join(none, 'leases'), '--state-dir', stateDir];
    this.#child = spawn('ip', ['netns', 'exec', netns, process.execPath, AGENT, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TABULA_DEBUG: '1', ...env },
    });
    let buf = '';
    const take = (d: string): void => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      for (const w of [...this.#waiters]) w();
    };
    this.#child.stdout?.setEncoding('utf8').on('data', take);
    this.#child.stderr?.setEncoding('utf8').on('data', take);
    this.exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)));
    void this.exited.then(() => {
      for (const w of [...this.#waiters]) w();
    });
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** The first journal line from index `from` on matching `pattern`; rejects on timeout or exit, with the log. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000, from = 0): Promise<{ line: string; index: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.lines.findIndex((l, i) => i >= from && pattern.test(l));
      if (index >= 0) return { line: this.lines[index]!, index };
      if (!this.running) throw new Error(`agent exited waiting for ${pattern}:\n${this.lines.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}; agent log:\n${this.lines.slice(-40).join('\n')}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }

  /** SIGTERM (as systemd stops it); SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (this.running) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
      const code = await this.exited;
      clearTimeout(timer);
      return code;
    }
    return this.exited;
  }

  log(): string {
    return this.lines.join('\n');
  }
}

/** Types on the display as a visitor would (XTEST): a key, or a click. */
export async function press(display: number, key: string): Promise<void> {
  await run('xdotool', ['key', key], { env: { ...process.env, DISPLAY: `:${display}` } });
}

export async function moveMouse(display: number, x: number, y: number): Promise<void> {
  await run('xdotool', ['mousemove', String(x), String(y)], { env: { ...process.env, DISPLAY: `:${display}` } });
}
