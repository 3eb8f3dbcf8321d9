// A kiosk station's viewer for integration tests: the real remote-viewer on a
// private Xvfb, read back through screenshots and OCR.
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_PREFIX } from './env.js';
import { startProcess, startXDisplay, stopProcess, type Screenshot } from './x-display.js';

export type { Screenshot } from './x-display.js';

export interface ViewerOptions {
  /** Network namespace of the station; remote-viewer runs in it, Xvfb does not. */
  netns?: string;
  host: string;
  port: number;
  /** Given: through a `.vv` file that remote-viewer deletes. Absent: a plain `spice://` URL, as old stations use. */
  password?: string;
  /** Default wait of `waitForText`, and the start-up limit of Xvfb. */
  timeoutMs?: number;
  /** Screenshots and remote-viewer's log are copied here and kept. */
  artifactsDir?: string;
  /** Labels this viewer's artifacts. */
  name?: string;
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

/**
 * remote-viewer otherwise titles its window with the guest's name, and OCR of
 * the title bar would pass a test that never saw the guest's screen.
 */
const TITLE = 'tabula-test-viewer';
/** 1:1 leaves room for the test guest's 720x400 text console plus the window frame. */
const SCREEN = '1024x768x24';

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
  const rvlog: string[] = [];

  let target: string;
  if (o.password !== undefined) {
    target = join(dir, 'connect.vv');
    await writeFile(target, vvFile(o.host, o.port, o.password), { mode: 0o600 });
  } else {
    target = `spice://${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  }

  const x = await startXDisplay({ screen: SCREEN, timeoutMs, artifactsDir: o.artifactsDir, name: label }).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });

  // remote-viewer keeps settings and caches under XDG dirs; keep them out of root's home and away from other viewers.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DISPLAY: `:${x.display}`,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    NO_AT_BRIDGE: '1',
  };
  // --zoom=100 keeps the guest's pixels 1:1: without a window manager full
  // screen only stretches the window by a non-integer factor, which smears the
  // VGA glyphs OCR reads.
  const rvArgs = ['--zoom=100', `--title=${TITLE}`, target];
  // X clients in another netns still reach Xvfb through its socket file (only
  // abstract sockets are per netns), so xwd needs no namespace and the
  // station namespace carries nothing but Spice.
  const rv = o.netns
    ? startProcess('ip', ['netns', 'exec', o.netns, 'remote-viewer', ...rvArgs], { env, stdio: ['ignore', 'pipe', 'pipe'], log: rvlog })
    : startProcess('remote-viewer', rvArgs, { env, stdio: ['ignore', 'pipe', 'pipe'], log: rvlog });

  let rvExit: number | null | undefined;
  void rv.exited.then((c) => (rvExit = c));
  // One more look after remote-viewer has gone: its last picture stays on the screen.
  const waitForText = (pattern: RegExp, waitMs = timeoutMs): Promise<Screenshot> =>
    x.waitForText(pattern, waitMs, () => (rvExit !== undefined ? `remote-viewer exited (${rvExit})` : undefined));

  // A test that dies without close() must not leave a viewer on the host.
  const onExit = (): void => {
    if (rv.child.exitCode === null && rv.child.signalCode === null) rv.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      process.removeListener('exit', onExit);
      await stopProcess(rv);
      await x.close();
      if (o.artifactsDir) await writeFile(join(o.artifactsDir, `${label}-remote-viewer.log`), rvlog.join(''));
      await rm(dir, { recursive: true, force: true });
    })();
    return closing;
  }

  return { display: x.display, screenshot: (file) => x.screenshot(file), waitForText, exited: rv.exited, close };
}
