// The activity adapters against the real thing: xprintidle on a private Xvfb
// fed by xdotool, and event-device records written into FIFOs.
import t, { type Test } from 'tap';
import { startXDisplay } from '../../../../supervisor/test/helpers/x-display.js';
import { execFile } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { EvdevActivity, hasInput, inputEventSize } from '../../src/adapters/evdev-activity.js';
import { X11IdleActivity } from '../../src/adapters/x11-idle-activity.js';
import type { Fields, Logger } from '../../src/ports/logger.js';

const run = promisify(execFile);

interface Record_ {
  level: string;
  event: string;
  fields: Fields;
}

function memoryLogger(): Logger & { records: Record_[]; at(level: string): Record_[] } {
  const records: Record_[] = [];
  const add = (level: string) => (event: string, fields: Fields = {}) => void records.push({ level, event, fields });
  return {
    records,
    at: (level) => records.filter((r) => r.level === level),
    err: add('err'),
    warning: add('warning'),
    notice: add('notice'),
    info: add('info'),
    debug: add('debug'),
  };
}

/** Calls of a listener, by time since the test began (ms). */
function recorder(): { listener: () => void; calls: number[]; since(at: number): number } {
  const t0 = performance.now();
  const calls: number[] = [];
  return { calls, listener: () => void calls.push(performance.now() - t0), since: (at) => at - t0 };
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}


/** A private X server (the shared test display; it runs with -noreset, which xprintidle needs). */
async function startXvfb(t: Test): Promise<string> {
  const x = await startXDisplay({ screen: '640x480x24', name: 'agent-x' });
  t.teardown(() => x.close());
  return `:${x.display}`;
}

t.test('x11: xprintidle on a private Xvfb', async (t) => {
  const display = await startXvfb(t);
  const xdotool = (...args: string[]) => run('xdotool', args, { env: { ...process.env, DISPLAY: display } });
  // The server's start counts as input; let it age past a poll interval.
  await delay(1_500);

  await t.test('no input for 3 s: no call', async (t) => {
    const log = memoryLogger();
    const rec = recorder();
    const x11 = new X11IdleActivity({ display, logger: log });
    t.teardown(() => x11.stop());
    x11.start(rec.listener, 500);
    await delay(3_000);
    t.same(rec.calls, [], 'listener not called');
    t.same(log.records.filter((r) => r.level !== 'debug'), [], 'nothing logged');
  });

  await t.test('mouse motion and a key press are activity', async (t) => {
    const log = memoryLogger();
    const rec = recorder();
    const x11 = new X11IdleActivity({ display, logger: log });
    t.teardown(() => x11.stop());
    x11.start(rec.listener, 500);
    await delay(1_200);
    t.equal(rec.calls.length, 0, 'quiet before');
    await xdotool('mousemove', '100', '120');
    await until('a call after mousemove', () => rec.calls.length === 1, 3_000);
    t.pass('mousemove fired the listener');
    await delay(1_500);
    t.equal(rec.calls.length, 1, 'once for one motion');
    await xdotool('key', 'shift');
    await until('a call after a key press', () => rec.calls.length === 2, 3_000);
    t.pass('a key press fired the listener');
    x11.stop();
    await xdotool('mousemove', '200', '220');
    await delay(1_500);
    t.equal(rec.calls.length, 2, 'nothing after stop()');
  });

  await t.test('steady input: at most once per everyMs', async (t) => {
    const rec = recorder();
    const x11 = new X11IdleActivity({ display, logger: memoryLogger(), pollMs: 200 });
    t.teardown(() => x11.stop());
    x11.start(rec.listener, 1_000);
    const end = performance.now() + 3_000;
    for (let i = 0; performance.now() < end; i++) {
      await xdotool('mousemove', String(10 + (i % 50)), '10');
      await delay(100);
    }
    await delay(1_300);
    // How many calls depends on how fast xdotool runs on a busy host; the throttle is the gaps.
    t.ok(rec.calls.length >= 2, `input over 3 s was reported (${rec.calls.map(Math.round).join(', ')})`);
    for (let i = 1; i < rec.calls.length; i++) t.ok(rec.calls[i]! - rec.calls[i - 1]! >= 990, `gap ${i} is at least everyMs`);
  });

  await t.test('xprintidle missing: logged once, retried, never thrown', async (t) => {
    const log = memoryLogger();
    const rec = recorder();
    const x11 = new X11IdleActivity({ display, logger: log, command: '/nonexistent/xprintidle', retryMs: 100 });
    t.teardown(() => x11.stop());
    x11.start(rec.listener, 100);
    await delay(800);
    t.equal(rec.calls.length, 0);
    t.equal(log.records.length, 1, 'one record for several failed polls');
    t.match(log.records[0], { level: 'warning', event: 'activity-source-unavailable', fields: { source: 'x11', error: 'command not found', command: '/nonexistent/xprintidle' } });
  });

  await t.test('no display: logged once; recovery is logged and activity flows again', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tabula-it-x11-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    // Fails like xprintidle without a display until told otherwise, then reports fresh input.
    const fake = join(dir, 'xprintidle');
    await writeFile(fake, `#!/bin/sh\n[ -e ${dir}/up ] && { echo 0; exit 0; }\necho "couldn't open display" >&2\nexit 1\n`);
    await chmod(fake, 0o755);
    const log = memoryLogger();
    const rec = recorder();
    const x11 = new X11IdleActivity({ display: ':59999', logger: log, command: fake, retryMs: 100, pollMs: 100 });
    t.teardown(() => x11.stop());
    x11.start(rec.listener, 100);
    await delay(800);
    t.equal(rec.calls.length, 0);
    t.same(
      log.records.map((r) => [r.level, r.event, r.fields['error']]),
      [['warning', 'activity-source-unavailable', "couldn't open display"]],
    );
    await writeFile(join(dir, 'up'), '');
    await until('activity after recovery', () => rec.calls.length > 0, 3_000);
    t.match(log.records[1], { level: 'notice', event: 'activity-source-recovered', fields: { display: ':59999' } });
  });

  await t.test('the real xprintidle without a display', async (t) => {
    const log = memoryLogger();
    const x11 = new X11IdleActivity({ display: ':59998', logger: log, retryMs: 100 });
    t.teardown(() => x11.stop());
    x11.start(() => undefined, 100);
    await delay(800);
    t.equal(log.records.length, 1);
    t.match(log.records[0]?.fields['error'], /open display/);
  });
});

/** One `struct input_event` of this machine's size. */
function record(type: number, code = 0, value = 0): Buffer {
  const size = inputEventSize();
  const b = Buffer.alloc(size);
  b.writeUInt16LE(type, size - 8);
  b.writeUInt16LE(code, size - 6);
  b.writeInt32LE(value, size - 4);
  return b;
}
const EV_SYN = 0;
const EV_KEY = 1;
const EV_REL = 2;
const EV_ABS = 3;
const EV_MSC = 4;
const EV_LED = 17;

t.test('evdev: records in FIFOs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabula-it-evdev-'));
  const writers: number[] = [];
  t.teardown(async () => {
    for (const fd of writers) closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  });
  const fifo = async (name: string) => {
    await run('mkfifo', [join(dir, name)]);
    return join(dir, name);
  };
  /** A writer end, once the adapter holds the reading end (before that, opening fails with ENXIO). */
  const writer = async (path: string) => {
    const deadline = performance.now() + 3_000;
    for (;;) {
      try {
        const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
        writers.push(fd);
        return fd;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO' || performance.now() > deadline) throw e;
        await delay(20);
      }
    }
  };
  const event0 = await fifo('event0');
  await fifo('mouse0'); // not an event device by name: ignored

  await t.test('records', async (t) => {
    t.equal(inputEventSize('x64'), 24);
    t.equal(inputEventSize('arm64'), 24);
    t.equal(inputEventSize('arm'), 16);
    const syn16 = Buffer.alloc(16);
    const key16 = Buffer.alloc(16);
    key16.writeUInt16LE(EV_KEY, 8);
    t.notOk(hasInput(syn16, 16));
    t.ok(hasInput(Buffer.concat([syn16, key16]), 16), '32-bit records');
    t.notOk(hasInput(Buffer.concat([record(EV_SYN), record(EV_MSC, 4, 30), record(EV_LED, 0, 1)])));
    t.notOk(hasInput(record(EV_KEY).subarray(0, 20)), 'a cut-off record is not read');
  });

  await t.test('key, motion and touch are activity; EV_SYN, EV_MSC, LEDs are not', async (t) => {
    const log = memoryLogger();
    const rec = recorder();
    const ev = new EvdevActivity({ logger: log, dir, pollMs: 50, rescanMs: 200 });
    t.teardown(() => ev.stop());
    ev.start(rec.listener, 300);
    const w = await writer(event0);
    t.same(
      log.records.map((r) => [r.event, r.fields['path']]),
      [['input-device-added', event0]],
      'only event0 opened',
    );

    writeSync(w, Buffer.concat([record(EV_SYN), record(EV_MSC, 4, 0x70004), record(EV_SYN), record(EV_LED, 1, 1)]));
    await delay(500);
    t.same(rec.calls, [], 'no call for EV_SYN/EV_MSC/EV_LED');

    let n = 0;
    for (const [name, rec_] of [
      ['EV_KEY', record(EV_KEY, 30, 1)],
      ['EV_REL', record(EV_REL, 0, -3)],
      ['EV_ABS', record(EV_ABS, 53, 200)],
    ] as const) {
      writeSync(w, Buffer.concat([rec_, record(EV_SYN)]));
      await until(`a call for ${name}`, () => rec.calls.length === n + 1, 2_000);
      t.pass(`${name} fired the listener`);
      n++;
      await delay(400); // past everyMs
    }

    // A record cut in two by the writer counts once it is whole.
    const key = record(EV_KEY, 30, 0);
    writeSync(w, key.subarray(0, 10));
    await delay(400);
    t.equal(rec.calls.length, n, 'half a record: nothing');
    writeSync(w, key.subarray(10));
    await until('a call for the completed record', () => rec.calls.length === n + 1, 2_000);
    t.pass('the completed record fired the listener');
    t.same(log.at('warning'), [], 'no warnings');
  });

  await t.test('throttled to once per everyMs, with the trailing activity reported', async (t) => {
    const rec = recorder();
    const ev = new EvdevActivity({ logger: memoryLogger(), dir, pollMs: 50, rescanMs: 200 });
    t.teardown(() => ev.stop());
    ev.start(rec.listener, 1_000);
    const w = await writer(event0);
    const first = performance.now();
    while (performance.now() - first < 2_500) {
      writeSync(w, Buffer.concat([record(EV_REL, 0, 1), record(EV_SYN)]));
      await delay(50);
    }
    await delay(1_300);
    t.ok(rec.calls.length >= 3 && rec.calls.length <= 4, `3 or 4 calls for 2.5 s of motion (${rec.calls.map(Math.round).join(', ')})`);
    t.ok(rec.calls[0]! - rec.since(first) < 400, 'the first call comes at once');
    for (let i = 1; i < rec.calls.length; i++) t.ok(rec.calls[i]! - rec.calls[i - 1]! >= 990, `gap ${i} is at least everyMs`);
  });

  await t.test('hot-plugged devices are picked up; a broken one is dropped and logged once', async (t) => {
    const log = memoryLogger();
    const rec = recorder();
    const ev = new EvdevActivity({ logger: log, dir, pollMs: 50, rescanMs: 100 });
    t.teardown(() => ev.stop());
    ev.start(rec.listener, 100);
    await mkdir(join(dir, 'event9')); // opens, then every read fails (EISDIR)
    const event1 = await fifo('event1');
    const w1 = await writer(event1);
    writeSync(w1, record(EV_KEY, 2, 1));
    await until('a call from the plugged-in device', () => rec.calls.length === 1, 2_000);
    t.pass('event1 fired the listener');
    await delay(600); // several rescans, each reopening event9
    const broken = log.records.filter((r) => r.fields['path'] === join(dir, 'event9') && r.level !== 'debug');
    t.equal(broken.length, 1, 'the broken device is logged once');
    t.match(broken[0], { level: 'warning', event: 'input-device-unreadable', fields: { error: /EISDIR/ } });
    const w0 = await writer(event0);
    writeSync(w0, record(EV_KEY, 3, 1));
    await until('a call from event0 still', () => rec.calls.length === 2, 2_000);
    t.pass('the other devices still work');
  });

  await t.test('no devices at all: logged once, found when they appear', async (t) => {
    const empty = await mkdtemp(join(tmpdir(), 'tabula-it-evdev-empty-'));
    t.teardown(() => rm(empty, { recursive: true, force: true }));
    const log = memoryLogger();
    const rec = recorder();
    const ev = new EvdevActivity({ logger: log, dir: empty, pollMs: 50, rescanMs: 100 });
    t.teardown(() => ev.stop());
    ev.start(rec.listener, 100);
    await delay(500);
    t.same(
      log.records.map((r) => [r.level, r.event]),
      [['warning', 'activity-source-unavailable']],
    );
    await run('mkfifo', [join(empty, 'event3')]);
    const w = await writer(join(empty, 'event3'));
    writeSync(w, record(EV_ABS, 0, 5));
    await until('a call from the new device', () => rec.calls.length === 1, 2_000);
    t.ok(log.records.some((r) => r.event === 'activity-source-recovered'), 'recovery logged');
  });

  await t.test('a missing directory does not throw', async (t) => {
    const log = memoryLogger();
    const ev = new EvdevActivity({ logger: log, dir: join(dir, 'nope'), pollMs: 50, rescanMs: 100 });
    t.teardown(() => ev.stop());
    ev.start(() => undefined, 100);
    await delay(400);
    t.equal(log.records.length, 1);
    t.match(log.records[0], { level: 'warning', event: 'activity-source-unavailable', fields: { error: /ENOENT/ } });
  });
});
