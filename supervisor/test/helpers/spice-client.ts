// A kiosk station's viewer for integration tests: the real remote-viewer on a
// private Xvfb, read back through screenshots and OCR.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { run, TEST_PREFIX } from './env.js';

export interface ViewerOptions {
  /** Network namespace of the station; remote-viewer runs in it, Xvfb does not. */
  netns?: string;
  host: string;
  port: number;
  /** Given: through a `.vv` file that remote-viewer deletes. Absent: a plain `spice://` URL, as old stations use. */
  password?: string;
  /** X display number; default: the first free one, chosen by Xvfb. */
  display?: number;
  /** Default wait of `waitForText`, and the start-up limit of Xvfb. */
  timeoutMs?: number;
  /** Screenshots and remote-viewer's log are copied here and kept. */
  artifactsDir?: string;
  /** Labels this viewer's artifacts. */
  name?: string;
}

export interface Screenshot {
  readonly png: string;
  readonly text: string;
}

export interface Viewer {
  /** The Xvfb display it runs on (`/tmp/.X11-unix/X<display>`). */
  readonly display: number;
  screenshot(file?: string): Promise<Screenshot>;
  waitForText(pattern: RegExp, timeoutMs?: number): Promise<Screenshot>;
  /** remote-viewer's exit code (null: killed by a signal); resolves however it ends, never rejects. */
  exited: Promise<number | null>;
  close(): Promise<void>;
}

/** 1:1 leaves room for the test guest's 720x400 text console plus the window frame. */
const SCREEN = '1024x768x24';
/**
 * remote-viewer otherwise titles its window with the guest's name, and OCR of
 * the title bar would pass a test that never saw the guest's screen.
 */
const TITLE = 'tabula-test-viewer';

/**
 * OCR of the VGA text font. At 1:1 (no fullscreen: without a window manager it
 * only stretches the window by a non-integer factor, which smears the glyphs),
 * doubled with nearest-neighbour so the pixels stay square, inverted to dark on
 * light and stretched to full contrast; `--psm 6` reads the screen as one block
 * of text. One OpenMP thread: on a busy two-core host the threads only contend
 * (5 s instead of under 1 s per screenshot).
 */
const OCR_PREPARE = ['-colorspace', 'Gray', '-filter', 'point', '-resize', '200%', '-negate', '-normalize'];
const TESSERACT = ['--psm', '6'];

/**
 * What tesseract made of the VGA font in our measurements: the dotted zero
 * mostly comes out as O, @ or ©, never as 0; l and 1 swap with I, i or |; a
 * hyphen may become a dash. Only look-alikes of another kind (letter for digit,
 * dash for hyphen) are merged, never two digits, so names of one pool, which
 * differ in their slot number, never match each other.
 */
const LOOKALIKES: Readonly<Record<string, string>> = {
  '0': '0Oo@©',
  o: 'o0',
  '1': '1lIi|',
  l: 'l1Ii|',
  i: 'i1lI|',
  '5': '5S',
  s: 's5',
  '8': '8B',
  '-': '-‐–—_',
};

function charClass(chars: string): string {
  return `[${[...chars].map((c) => c.replace(/[\\\]^-]/g, '\\$&')).join('')}]`;
}

/**
 * Matches `name` in OCR text, allowing the look-alikes above but not a longer
 * name: `tabula-it-life-1` does not match `tabula-it-life-10`, nor `-0`.
 */
export function ocrNamePattern(name: string): RegExp {
  const body = [...name]
    .map((c) => {
      const alike = LOOKALIKES[c.toLowerCase()];
      return alike ? charClass(alike.includes(c) ? alike : alike + c) : c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    })
    .join('');
  return new RegExp(`(?<![A-Za-z0-9])${body}(?![A-Za-z0-9])`, 'i');
}

/** Whether OCR text shows `name` (see `ocrNamePattern`). */
export function ocrShows(text: string, name: string): boolean {
  return ocrNamePattern(name).test(text);
}

interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

function start(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdio: ('ignore' | 'pipe')[]; log?: string[] }): Started {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: opts.stdio });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      opts.log?.push(`${cmd}: ${String(e)}`);
      resolve(null);
    });
    child.on('exit', (code) => resolve(code));
  });
  for (const s of [child.stdout, child.stderr]) {
    s?.setEncoding('utf8');
    s?.on('data', (d: string) => opts.log?.push(d));
  }
  return { child, exited };
}

async function stop(p: Started, graceMs = 3_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null || p.child.pid === undefined) {
    await p.exited;
    return;
  }
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

/** Xvfb reports the display it took on `-displayfd` once it accepts clients. */
async function startXvfb(display: number | undefined, timeoutMs: number, log: string[]): Promise<{ proc: Started; display: number }> {
  const args = [...(display === undefined ? [] : [`:${display}`]), '-displayfd', '3', '-screen', '0', SCREEN, '-nolisten', 'tcp', '-noreset'];
  const proc = start('Xvfb', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], log });
  const fd3 = proc.child.stdio[3] as NodeJS.ReadableStream | null;
  try {
    const n = await new Promise<number>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`Xvfb did not start in ${timeoutMs} ms: ${log.join('')}`)), timeoutMs);
      fd3?.setEncoding('utf8');
      fd3?.on('data', (d: string) => {
        buf += d;
        if (buf.includes('\n')) {
          clearTimeout(timer);
          resolve(Number(buf.trim()));
        }
      });
      void proc.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`Xvfb exited (${code}) before it was ready: ${log.join('')}`));
      });
    });
    return { proc, display: n };
  } catch (e) {
    await stop(proc);
    throw e;
  }
}

function vvFile(host: string, port: number, password: string): string {
  return [
    '[virt-viewer]',
    'type=spice',
    `host=${host}`,
    `port=${port}`,
    `password=${password}`,
    'delete-this-file=1',
    '',
  ].join('\n');
}

export async function startViewer(o: ViewerOptions): Promise<Viewer> {
  const label = o.name ?? `viewer-${o.port}`;
  const timeoutMs = o.timeoutMs ?? 60_000;
  // The TEST_PREFIX name lets the leak check find a directory close() missed.
  const dir = await mkdtemp(join(tmpdir(), `tabula-${TEST_PREFIX}-viewer-`));
  if (o.artifactsDir) await mkdir(o.artifactsDir, { recursive: true });
  const xlog: string[] = [];
  const rvlog: string[] = [];
  let shots = 0;

  let target: string;
  if (o.password !== undefined) {
    target = join(dir, 'connect.vv');
    await writeFile(target, vvFile(o.host, o.port, o.password), { mode: 0o600 });
  } else {
    target = `spice://${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  }

  const x = await startXvfb(o.display, Math.min(timeoutMs, 20_000), xlog).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  const DISPLAY = `:${x.display}`;

  // remote-viewer keeps settings and caches under XDG dirs; keep them out of root's home and away from other viewers.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DISPLAY,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    NO_AT_BRIDGE: '1',
  };
  // --zoom=100 keeps the guest's pixels 1:1 (see OCR_PREPARE).
  const rvArgs = ['--zoom=100', `--title=${TITLE}`, target];
  // X clients in another netns still reach Xvfb through its socket file (only
  // abstract sockets are per netns), so xwd needs no namespace and the
  // station namespace carries nothing but Spice.
  const rv = o.netns ? start('ip', ['netns', 'exec', o.netns, 'remote-viewer', ...rvArgs], { env, stdio: ['ignore', 'pipe', 'pipe'], log: rvlog }) : start('remote-viewer', rvArgs, { env, stdio: ['ignore', 'pipe', 'pipe'], log: rvlog });

  async function screenshot(file?: string): Promise<Screenshot> {
    const n = ++shots;
    const xwd = join(dir, `shot-${n}.xwd`);
    const ocr = join(dir, `shot-${n}-ocr.png`);
    const base = file ?? `${label}-${String(n).padStart(3, '0')}.png`;
    const png = isAbsolute(base) ? base : join(o.artifactsDir ?? dir, base);
    try {
      await run('xwd', ['-root', '-silent', '-display', DISPLAY, '-out', xwd], { timeout: 20_000 });
      await run('convert-im6.q16', [xwd, `png:${png}`], { timeout: 20_000 });
      await run('convert-im6.q16', [png, ...OCR_PREPARE, `png:${ocr}`], { timeout: 20_000 });
      const { stdout } = await run('tesseract', [ocr, 'stdout', ...TESSERACT], {
        timeout: 30_000,
        env: { ...process.env, OMP_THREAD_LIMIT: '1' },
      });
      return { png, text: stdout };
    } finally {
      await rm(xwd, { force: true });
      await rm(ocr, { force: true });
    }
  }

  let rvExit: number | null | undefined;
  void rv.exited.then((c) => (rvExit = c));

  async function waitForText(pattern: RegExp, waitMs = timeoutMs): Promise<Screenshot> {
    const deadline = Date.now() + waitMs;
    const matches = (text: string): boolean => {
      pattern.lastIndex = 0;
      return pattern.test(text);
    };
    // Polls overwrite one scratch file; only the final picture becomes an artifact.
    const scratch = join(dir, 'wait.png');
    let text: string;
    let found: boolean;
    for (;;) {
      // One more look after remote-viewer has gone: its last picture stays on the screen.
      const gone = rvExit !== undefined;
      ({ text } = await screenshot(scratch));
      found = matches(text);
      if (found || gone || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const kept = join(o.artifactsDir ?? dir, `${label}-${String(shots).padStart(3, '0')}-wait.png`);
    await copyFile(scratch, kept);
    const shot = { png: kept, text };
    if (found) return shot;
    const why = rvExit !== undefined ? `remote-viewer exited (${rvExit})` : `timed out after ${waitMs} ms`;
    throw Object.assign(new Error(`${label}: ${why} waiting for ${pattern}; last screen (${kept}):\n${shot.text}`), { shot });
  }

  // A test that dies without close() must not leave a viewer on the host.
  const onExit = (): void => {
    for (const p of [rv, x.proc]) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      process.removeListener('exit', onExit);
      await stop(rv);
      await stop(x.proc);
      if (o.artifactsDir) await writeFile(join(o.artifactsDir, `${label}-remote-viewer.log`), rvlog.join(''));
      await rm(dir, { recursive: true, force: true });
    })();
    return closing;
  }

  return { display: x.display, screenshot, waitForText, exited: rv.exited, close };
}
