// The kiosk's screen program (screen/screen.js through GjsScreen) on a private
// Xvfb, read back through screenshots and OCR, driven with xdotool.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { BUILD, run, TEST_PREFIX } from '../../../../supervisor/test/helpers/env.js';
import { GjsScreen } from '../../src/adapters/gjs-screen.js';
import type { KioskAccount } from '../../src/ports/kiosk-user.js';
import type { Fields, Logger } from '../../src/ports/logger.js';
import type { ScreenEvent } from '../../src/ports/screen.js';

const PROGRAM = resolve(import.meta.dirname, '../../screen/screen.js');
const ARTIFACTS = join(BUILD, 'test-artifacts', 'screen');
const WIDTH = 1024;
const HEIGHT = 768;
const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf';
/** The countdown's seconds as OCR reads them ("89 s" or "89s"). */
const SECONDS = /\b(\d+) ?s\b/;
/**
 * The screen's text is white or near-white on dark colours: keep only the
 * brightest pixels, as dark text on white, which is what tesseract reads
 * best. `--psm 3` (automatic layout) reads the menu's buttons, where sparse
 * text mode loses the focused one. One OpenMP thread: on a busy host the
 * threads only contend.
 */
const OCR_PREPARE = ['-colorspace', 'Gray', '-threshold', '70%', '-negate'];

// ---------------------------------------------------------------- processes we start

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdio: ('ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe']): Proc {
  const child = spawn(cmd, args, { env, stdio });
  const exited = new Promise<void>((r) => {
    child.on('error', () => r());
    child.on('close', () => r());
  });
  return { child, exited };
}

async function end(p: Proc | undefined): Promise<void> {
  if (p === undefined) return;
  if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid !== undefined) {
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 3_000);
    await p.exited;
    clearTimeout(timer);
  }
  await p.exited;
}

/**
 * Xvfb reports the display it took on `-displayfd` once it accepts clients.
 * A white root (-wr) shows any part of the screen the kiosk's window misses.
 * The screen's pixels are read from its framebuffer file (-fbdir), not with
 * `xwd -root`: xwd rebuilds the picture window by window when they have
 * different colormaps, and then shows GTK's override-redirect countdown
 * black once it has been raised above another window, although the screen
 * shows it fine.
 */
async function startXvfb(fbdir: string): Promise<{ proc: Proc; display: number }> {
  const args = ['-displayfd', '3', '-screen', '0', `${WIDTH}x${HEIGHT}x24`, '-fbdir', fbdir, '-nolisten', 'tcp', '-noreset', '-wr'];
  const proc = start('Xvfb', args, process.env, ['ignore', 'ignore', 'ignore', 'pipe']);
  const fd3 = proc.child.stdio[3] as NodeJS.ReadableStream;
  const display = await new Promise<number>((ok, fail) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error('Xvfb did not start in 20 s')), 20_000);
    fd3.setEncoding('utf8');
    fd3.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) {
        clearTimeout(timer);
        ok(Number(buf.trim()));
      }
    });
    void proc.exited.then(() => fail(new Error('Xvfb exited before it was ready')));
  }).catch(async (e: unknown) => {
    await end(proc);
    throw e;
  });
  return { proc, display };
}

// ---------------------------------------------------------------- set-up and teardown

const dir = await mkdtemp(join(tmpdir(), `tabula-${TEST_PREFIX}-screen-`));
await mkdir(ARTIFACTS, { recursive: true });
const logLines: string[] = [];
const record = (level: string) => (event: string, fields: Fields = {}) =>
  logLines.push(`${level} event=${event}${Object.entries(fields).map(([k, v]) => (v === undefined ? '' : ` ${k}=${String(v)}`)).join('')}`);
const logger: Logger = { err: record('err'), warning: record('warning'), notice: record('notice'), info: record('info'), debug: record('debug') };

/** What teardown ends: whatever got started before a failure. */
const live: { xvfb?: Proc; other?: Proc; screen?: GjsScreen } = {};

// A test that dies without its teardown must not leave an X server behind.
const onExit = (): void => {
  for (const p of [live.other, live.xvfb]) if (p && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  const pid = live.screen?.pid;
  try {
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  rmSync(dir, { recursive: true, force: true });
};
process.once('exit', onExit);

t.teardown(async () => {
  process.removeListener('exit', onExit);
  await live.screen?.stop();
  await end(live.other);
  await end(live.xvfb);
  await writeFile(join(ARTIFACTS, 'screen.log'), logLines.join('\n') + '\n');
  await rm(dir, { recursive: true, force: true });
});

const fbdir = join(dir, 'fb');
await mkdir(fbdir);
const x = await startXvfb(fbdir);
live.xvfb = x.proc;
const DISPLAY = `:${x.display}`;
const xenv = { ...process.env, DISPLAY };

const account: KioskAccount = {
  name: userInfo().username,
  uid: process.getuid?.() ?? 0,
  gid: process.getgid?.() ?? 0,
  home: dir,
  env: { DISPLAY, HOME: dir },
};
const screen = new GjsScreen({ program: PROGRAM, account, logger });
live.screen = screen;

const events: ScreenEvent[] = [];
let wake: (() => void) | undefined;
screen.onEvent((e) => {
  events.push(e);
  wake?.();
});

/** The first event from `events[from]` on that `match`es; rejects after `ms`. */
async function eventAfter(from: number, match: (e: ScreenEvent) => boolean, ms = 10_000): Promise<ScreenEvent> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = events.slice(from).find(match);
    if (found) return found;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no matching event in ${ms} ms; events since: ${JSON.stringify(events.slice(from))}`);
    await new Promise<void>((r) => {
      const timer = setTimeout(r, left);
      wake = () => {
        clearTimeout(timer);
        r();
      };
    });
  }
}

const xdotool = (...args: string[]) => run('xdotool', args, { env: xenv, timeout: 10_000 });

// ---------------------------------------------------------------- screenshots

interface Word {
  readonly text: string;
  readonly x: number;
  readonly y: number;
}

interface Shot {
  readonly png: string;
  readonly text: string;
  readonly words: readonly Word[];
}

let shots = 0;

async function screenshot(png: string): Promise<Shot> {
  const ocr = join(dir, 'shot-ocr.png');
  // The framebuffer file is in XWD format (see startXvfb).
  await run('convert-im6.q16', [`xwd:${join(fbdir, 'Xvfb_screen0')}`, `png:${png}`], { timeout: 20_000 });
  await run('convert-im6.q16', [png, ...OCR_PREPARE, `png:${ocr}`], { timeout: 20_000 });
  const { stdout } = await run('tesseract', [ocr, 'stdout', '--psm', '3', 'tsv'], { timeout: 30_000, env: { ...process.env, OMP_THREAD_LIMIT: '1' } });
  // TSV: level page block par line word left top width height conf text; level 5 is a word.
  const lines = new Map<string, string[]>();
  const words: Word[] = [];
  for (const row of stdout.split('\n').slice(1)) {
    const f = row.split('\t');
    const word = f[11]?.trim();
    if (f[0] !== '5' || !word) continue;
    const key = f.slice(1, 5).join('.');
    lines.set(key, [...(lines.get(key) ?? []), word]);
    words.push({ text: word, x: Number(f[6]) + Number(f[8]) / 2, y: Number(f[7]) + Number(f[9]) / 2 });
  }
  return { png, text: [...lines.values()].map((l) => l.join(' ')).join('\n'), words };
}

/** Screenshots until `ok` (kept as `<name>.png` in the artifacts); rejects with the last text. */
async function waitFor(name: string, ok: (shot: Shot) => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<Shot> {
  const deadline = Date.now() + ms;
  const scratch = join(dir, 'wait.png');
  for (;;) {
    const shot = await screenshot(scratch);
    const found = await ok(shot);
    if (found || Date.now() > deadline) {
      const kept = join(ARTIFACTS, `${String(++shots).padStart(2, '0')}-${name}.png`);
      await copyFile(scratch, kept);
      if (found) return { ...shot, png: kept };
      throw new Error(`${name}: no ${what} in ${ms} ms; last screen (${kept}):\n${shot.text}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Screenshots until `patterns` all show in the OCR text. */
function waitForText(name: string, patterns: readonly RegExp[], ms?: number): Promise<Shot> {
  return waitFor(name, (shot) => patterns.every((p) => p.test(shot.text)), patterns.join(' and '), ms);
}

/** The colour of one pixel of a screenshot, as [r, g, b] in 0..255. */
async function pixel(png: string, px: number, py: number): Promise<number[]> {
  const fx = (c: string) => `%[fx:int(255*p{${px},${py}}.${c}+0.5)]`;
  const { stdout } = await run('convert-im6.q16', [png, '-format', `${fx('r')},${fx('g')},${fx('b')}`, 'info:'], { timeout: 20_000 });
  return stdout.trim().split(',').map(Number);
}

/** The brightest value anywhere in a screenshot (0: all black). */
async function brightest(png: string): Promise<number> {
  const { stdout } = await run('convert-im6.q16', [png, '-colorspace', 'Gray', '-format', '%[fx:int(255*maxima+0.5)]', 'info:'], { timeout: 20_000 });
  return Number(stdout.trim());
}

function wordAt(shot: Shot, text: string): Word {
  const w = shot.words.find((w) => w.text === text);
  if (w === undefined) throw new Error(`no word ${text} on the screen:\n${shot.text}`);
  return w;
}

// ---------------------------------------------------------------- pictures

const one = join(dir, 'one.png');
const two = join(dir, 'two.png');
for (const [file, colour, caption] of [
  [one, 'navy', 'SLIDE ONE'],
  [two, 'darkgreen', 'SLIDE TWO'],
] as const) {
  await run('convert-im6.q16', ['-size', '640x480', `xc:${colour}`, '-fill', 'white', '-font', FONT, '-pointsize', '80', '-gravity', 'center', '-annotate', '0', caption, file]);
}

// ---------------------------------------------------------------- the views

t.test('the slideshow cycles its pictures, under the prompt', async (t) => {
  screen.show({ kind: 'slideshow', images: [one, two], intervalS: 2, prompt: 'Touch the screen to start' });
  const first = await waitForText('slideshow-one', [/SLIDE ONE/, /Touch the screen to start/]);
  t.pass('the first picture and the prompt');
  // 640x480 scaled to fit 1024x768 fills the screen: navy in the corner, not the white root.
  t.same(await pixel(first.png, 3, 3), [0, 0, 128], 'the picture is scaled to fit the whole screen');
  await waitForText('slideshow-two', [/SLIDE TWO/, /Touch the screen to start/]);
  t.pass('then the second');
  await waitForText('slideshow-one-again', [/SLIDE ONE/]);
  t.pass('and round again');
});

t.test('a key or a click on the slideshow is a touch', async (t) => {
  let from = events.length;
  await xdotool('key', 'space');
  t.same(await eventAfter(from, () => true), { kind: 'touched' }, 'a key');
  from = events.length;
  await xdotool('mousemove', '300', '300', 'click', '1');
  t.same(await eventAfter(from, () => true), { kind: 'touched' }, 'a click');
});

t.test('blank: black from corner to corner; a touch wakes it', async (t) => {
  screen.show({ kind: 'blank' });
  const deadline = Date.now() + 10_000;
  const scratch = join(dir, 'blank.png');
  let bright = 255;
  while (bright > 0 && Date.now() < deadline) bright = await brightest((await screenshot(scratch)).png);
  const png = join(ARTIFACTS, `${String(++shots).padStart(2, '0')}-blank.png`);
  await copyFile(scratch, png);
  // The root is white (-wr): any part the window missed would show.
  t.equal(bright, 0, `the whole screen is black (${png})`);
  const from = events.length;
  await xdotool('key', 'Return');
  t.same(await eventAfter(from, () => true), { kind: 'touched' });
});

t.test('the menu: a button per pool; digits, arrows and Enter, or a click pick one', async (t) => {
  const pools = [
    { name: 'office', label: 'Office desktop', ready: 3 },
    { name: 'linux', label: 'Linux lab', ready: 1 },
    { name: 'design', label: 'Design studio', ready: 2 },
  ];
  screen.show({ kind: 'menu', title: 'Choose your system', pools });
  const shot = await waitForText('menu', [/Choose your system/, /Office desktop/, /3 ready/, /Linux lab/, /1 ready/, /Design studio/, /2 ready/]);
  t.pass('title, labels and the VMs ready');

  let from = events.length;
  await xdotool('key', '2');
  t.same(await eventAfter(from, () => true), { kind: 'chose', pool: 'linux' }, 'the digit 2 picks the second');

  // A new menu starts with the focus on the first button.
  screen.show({ kind: 'menu', title: 'Choose your system', pools });
  await waitForText('menu-again', [/Office desktop/]);
  from = events.length;
  await xdotool('key', 'Down', 'Down', 'Return');
  t.same(await eventAfter(from, () => true), { kind: 'chose', pool: 'design' }, 'Down, Down, Enter picks the third');

  from = events.length;
  const office = wordAt(shot, 'Office');
  await xdotool('mousemove', String(Math.round(office.x)), String(Math.round(office.y)), 'click', '1');
  t.same(await eventAfter(from, () => true), { kind: 'chose', pool: 'office' }, 'a click on a button picks it');
});

t.test('waiting, message and unavailable; only unavailable takes a touch', async (t) => {
  const from = events.length;
  screen.show({ kind: 'waiting', images: [one, two], intervalS: 0.5, message: 'Preparing your desktop', position: 2 });
  await waitForText('waiting', [/Preparing your desktop/, /Your place in the queue: 2/, /SLIDE (ONE|TWO)/]);
  t.pass('the animation, the message and the place in the queue');
  await xdotool('key', 'space');
  await xdotool('mousemove', '512', '200', 'click', '1');

  screen.show({ kind: 'message', title: 'Your session has ended', detail: 'Everything you did has been erased.' });
  await waitForText('message', [/Your session has ended/, /Everything you did has been erased/]);
  t.pass('the message, title and detail');
  await xdotool('key', 'space');
  await xdotool('mousemove', '512', '200', 'click', '1');

  screen.show({ kind: 'unavailable', title: 'Service unavailable', detail: 'Trying again in 30 s' });
  const shot = await waitForText('unavailable', [/Service unavailable/, /Trying again in 30 ?s/]);
  t.pass('unavailable, title and detail');
  const [r = 0, g = 0, b = 0] = await pixel(shot.png, 3, HEIGHT / 2);
  t.ok(r > 90 && g < 60 && b < 60, `unavailable has its red band across the screen (rgb ${r},${g},${b})`);
  await xdotool('key', 'space');
  await eventAfter(from, (e) => e.kind === 'touched');
  // Let anything late from the earlier views arrive before counting.
  await new Promise((r) => setTimeout(r, 500));
  t.same(events.slice(from), [{ kind: 'touched' }], 'one touch: the key on unavailable, none from waiting or message');
});

t.test('the countdown counts down above another full-screen window', async (t) => {
  screen.show({ kind: 'message', title: 'Starting your desktop', detail: '' });
  screen.countdown({ reason: 'idle', seconds: 90, message: 'No activity: your session ends in' });
  const before = await waitForText('countdown', [/No activity: your session ends in/, SECONDS]);
  const first = Number(SECONDS.exec(before.text)?.[1]);
  t.ok(first <= 90 && first >= 80, `the seconds left (${first})`);

  // The viewer's stand-in: an ordinary full-screen window, mapped after the overlay.
  const script = join(dir, 'white.js');
  await writeFile(
    script,
    [
      "import Gdk from 'gi://Gdk?version=3.0';",
      "import Gtk from 'gi://Gtk?version=3.0';",
      'Gtk.init(null);',
      'const w = new Gtk.Window({ decorated: false });',
      'const area = new Gtk.DrawingArea();',
      "area.connect('draw', (_w, cr) => { cr.setSourceRGB(1, 1, 1); cr.paint(); cr.$dispose(); return true; });",
      'w.add(area);',
      'const g = Gdk.Display.get_default().get_monitor(0).get_geometry();',
      'w.move(g.x, g.y); w.set_default_size(g.width, g.height); w.fullscreen();',
      'w.show_all(); w.present();',
      'Gtk.main();',
    ].join('\n'),
  );
  live.other = start('gjs', ['-m', script], { ...xenv, HOME: dir, NO_AT_BRIDGE: '1' });
  // A corner of the screen is black on the message view, white once the other window covers it.
  const white = async (shot: Shot) => (await pixel(shot.png, 20, HEIGHT - 20)).every((c) => c === 255);
  const countdownShown = /No activity: your session ends in/;
  const covered = await waitFor('countdown-above-window', async (shot) => (await white(shot)) && countdownShown.test(shot.text), 'the other window under the countdown');
  t.pass('the other window covers the screen, the countdown stays above it');
  t.notMatch(covered.text, /Starting your desktop/, 'the screen itself is hidden under it');
  await new Promise((r) => setTimeout(r, 2_000));
  const above = await waitForText('countdown-later', [countdownShown, SECONDS]);
  t.ok(await white(above), 'the other window still covers the screen');
  const later = Number(SECONDS.exec(above.text)?.[1]);
  t.ok(later < first, `the countdown is still above it, counting (${first} then ${later})`);

  screen.countdown(null);
  const deadline = Date.now() + 10_000;
  let text = above.text;
  while (/session ends/.test(text) && Date.now() < deadline) text = (await screenshot(join(dir, 'gone.png'))).text;
  t.notMatch(text, /session ends/, 'null removes it');
  await end(live.other);
  delete live.other;
});

t.test('a killed screen program is reported and comes back by itself, countdown included', async (t) => {
  screen.countdown({ reason: 'time-limit', seconds: 60, message: 'Time is up: your session ends in' });
  const pid = screen.pid;
  t.ok(pid, 'it runs');
  const from = events.length;
  process.kill(pid!, 'SIGKILL');
  // Dead but not yet reaped, so the adapter still thinks it runs: its next
  // write meets a closed pipe (EPIPE), which must not take the agent down.
  // Waited for without yielding to the event loop, which would reap it. The
  // pipe is closed once gjs's last thread is gone, not when its main one is.
  const dead = () => readdirSync(`/proc/${pid}/task`).length === 1 && /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const deadline = Date.now() + 5_000;
  while (!dead() && Date.now() < deadline);
  screen.show({ kind: 'message', title: 'Nobody reads this', detail: '' });
  t.same(await eventAfter(from, () => true), { kind: 'exited', code: null }, 'exited, killed by a signal; the write to it was harmless');
  t.match(logLines.join('\n'), /event=screen-write-failed reason=.*EPIPE/, 'the write did meet EPIPE');
  // The kiosk never stays black: the adapter starts it again with what should be on screen.
  const deadline2 = Date.now() + 10_000;
  while ((screen.pid === undefined || screen.pid === pid) && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 50));
  t.ok(screen.pid !== undefined && screen.pid !== pid, 'started again by itself');

  screen.show({ kind: 'message', title: 'Back again', detail: '' });
  const shot = await waitForText('restarted', [/Back again/, /Time is up: your session ends in/]);
  t.not(screen.pid, pid, 'a new process');
  const left = Number(SECONDS.exec(shot.text)?.[1]);
  t.ok(left <= 60 && left > 40, `and the countdown came back with it (${left} s)`);

  // The overlay takes no input: a touch on it reaches what is below (here the slideshow).
  screen.show({ kind: 'slideshow', images: [], intervalS: 5, prompt: 'Touch to start' });
  await waitForText('under-countdown', [/Touch to start/, /Time is up/]);
  const from2 = events.length;
  await xdotool('mousemove', String(WIDTH / 2), '40', 'click', '1');
  t.same(await eventAfter(from2, () => true), { kind: 'touched' }, 'a click on the countdown goes through it');
  screen.countdown(null);
});

t.test('stop ends the program, without an exited event', async (t) => {
  const pid = screen.pid;
  const from = events.length;
  await screen.stop();
  t.equal(screen.pid, undefined);
  t.throws(() => process.kill(pid!, 0), { code: 'ESRCH' }, 'the process is gone');
  // Writing to a stopped screen is a no-op, not a crash.
  screen.countdown(null);
  t.same(events.slice(from), [], 'no exited: it was asked to stop');
  t.match(logLines.join('\n'), /event=screen-stopped code=0/, 'it left by itself on EOF');
});
