// A private X display for tests (Xvfb), read back through screenshots and OCR:
// what a kiosk's screen shows, whoever draws it (remote-viewer, the station
// agent's screen).
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { run, TEST_PREFIX } from './env.js';

export interface Screenshot {
  readonly png: string;
  readonly text: string;
}

export interface XDisplay {
  /** The display number (`/tmp/.X11-unix/X<display>`). */
  readonly display: number;
  screenshot(file?: string): Promise<Screenshot>;
  /**
   * Screenshots until OCR matches `pattern`; the last one is kept as an
   * artifact. `giveUp` (checked between shots) ends the wait early with its reason.
   */
  waitForText(pattern: RegExp, timeoutMs?: number, giveUp?: () => string | undefined): Promise<Screenshot>;
  close(): Promise<void>;
}

export interface XDisplayOptions {
  /** `WxHxDEPTH`; default 1024x768x24. */
  readonly screen?: string;
  readonly timeoutMs?: number;
  /** Screenshots are kept here. */
  readonly artifactsDir?: string;
  /** Labels the artifacts. */
  readonly name: string;
  /**
   * How screenshots are prepared for OCR: 'vga' (default) for a guest's text
   * console at 1:1; 'threshold' for screens with coloured panels (the kiosk's
   * own views), where stretching contrast would keep the panels as noise.
   */
  readonly ocr?: 'vga' | 'threshold';
}

/**
 * OCR of screen text. Doubled with nearest-neighbour so the pixels stay
 * square, inverted to dark on light and stretched to full contrast; `--psm 6`
 * reads the screen as one block of text. One OpenMP thread: on a busy
 * two-core host the threads only contend (5 s instead of under 1 s per shot).
 */
const OCR_PREPARE = {
  vga: ['-colorspace', 'Gray', '-filter', 'point', '-resize', '200%', '-negate', '-normalize'],
  threshold: ['-colorspace', 'Gray', '-threshold', '50%', '-negate'],
} as const;
const TESSERACT = ['--psm', '6'];

export interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

export function startProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdio: ('ignore' | 'pipe')[]; log?: string[] }): Started {
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

export async function stopProcess(p: Started, graceMs = 3_000): Promise<void> {
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
async function launchXvfb(screen: string, fbdir: string, timeoutMs: number, log: string[]): Promise<{ proc: Started; display: number }> {
  const args = ['-displayfd', '3', '-screen', '0', screen, '-fbdir', fbdir, '-nolisten', 'tcp', '-noreset'];
  const proc = startProcess('Xvfb', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], log });
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
    await stopProcess(proc);
    throw e;
  }
}

export async function startXDisplay(o: XDisplayOptions): Promise<XDisplay> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  // The TEST_PREFIX name lets the leak check find a directory close() missed.
  const dir = await mkdtemp(join(tmpdir(), `tabula-${TEST_PREFIX}-display-`));
  if (o.artifactsDir) await mkdir(o.artifactsDir, { recursive: true });
  const log: string[] = [];
  const x = await launchXvfb(o.screen ?? '1024x768x24', dir, Math.min(timeoutMs, 20_000), log).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  let shots = 0;

  async function screenshot(file?: string): Promise<Screenshot> {
    const n = ++shots;
    const ocr = join(dir, `shot-${n}-ocr.png`);
    const base = file ?? `${o.name}-${String(n).padStart(3, '0')}.png`;
    const png = isAbsolute(base) ? base : join(o.artifactsDir ?? dir, base);
    try {
      // Xvfb's own framebuffer, not `xwd -root`: xwd shows an override-redirect
      // window raised above another one (the kiosk's countdown over the viewer) as black.
      await run('convert-im6.q16', [`xwd:${join(dir, 'Xvfb_screen0')}`, `png:${png}`], { timeout: 20_000 });
      await run('convert-im6.q16', [png, ...OCR_PREPARE[o.ocr ?? 'vga'], `png:${ocr}`], { timeout: 20_000 });
      const { stdout } = await run('tesseract', [ocr, 'stdout', ...TESSERACT], {
        timeout: 30_000,
        env: { ...process.env, OMP_THREAD_LIMIT: '1' },
      });
      return { png, text: stdout };
    } finally {
      await rm(ocr, { force: true });
    }
  }

  async function waitForText(pattern: RegExp, waitMs = timeoutMs, giveUp?: () => string | undefined): Promise<Screenshot> {
    const deadline = Date.now() + waitMs;
    const matches = (text: string): boolean => {
      pattern.lastIndex = 0;
      return pattern.test(text);
    };
    // Polls overwrite one scratch file; only the final picture becomes an artifact.
    const scratch = join(dir, 'wait.png');
    let text: string;
    let found: boolean;
    let why: string | undefined;
    for (;;) {
      // One more look after giving up: the last picture may still show it.
      why = giveUp?.();
      ({ text } = await screenshot(scratch));
      found = matches(text);
      if (found || why !== undefined || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const kept = join(o.artifactsDir ?? dir, `${o.name}-${String(shots).padStart(3, '0')}-wait.png`);
    await copyFile(scratch, kept);
    const shot = { png: kept, text };
    if (found) return shot;
    throw Object.assign(new Error(`${o.name}: ${why ?? `timed out after ${waitMs} ms`} waiting for ${pattern}; last screen (${kept}):\n${shot.text}`), { shot });
  }

  // A test that dies without close() must not leave an X server on the host.
  const onExit = (): void => {
    if (x.proc.child.exitCode === null && x.proc.child.signalCode === null) x.proc.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  let closing: Promise<void> | undefined;
  return {
    display: x.display,
    screenshot,
    waitForText,
    close() {
      closing ??= (async () => {
        process.removeListener('exit', onExit);
        await stopProcess(x.proc);
        await rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
