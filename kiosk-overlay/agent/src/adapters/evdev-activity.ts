import { closeSync, constants, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { ActivitySource } from '../ports/activity.js';
import type { Logger } from '../ports/logger.js';
import { ActivityThrottle } from './activity-throttle.js';

/** Event types that are a visitor's doing: keys and buttons, relative motion (mice), absolute motion (touch). */
const EV_KEY = 1;
const EV_REL = 2;
const EV_ABS = 3;

/**
 * `struct input_event`: a timeval, then type u16, code u16, value s32. The
 * timeval is two longs: 16 bytes on 64-bit, 8 on 32-bit ABIs (a Raspberry Pi
 * OS of 32 bits), so a record is 24 or 16 bytes and the type sits 8 from its end.
 */
export function inputEventSize(arch: string = process.arch): number {
  return ['arm', 'ia32', 'mips', 'mipsel', 'ppc'].includes(arch) ? 16 : 24;
}

/** Whether whole records in `buf` include input; EV_SYN, EV_MSC, LEDs, switches and the like are not input. */
export function hasInput(buf: Buffer, size: number = inputEventSize()): boolean {
  for (let off = 0; off + size <= buf.length; off += size) {
    const type = buf.readUInt16LE(off + size - 8);
    if (type === EV_KEY || type === EV_REL || type === EV_ABS) return true;
  }
  return false;
}

export interface EvdevOptions {
  readonly logger: Logger;
  /** Default `/dev/input`. */
  readonly dir?: string;
  /** Which names in it are event devices. Default `event<N>`. */
  readonly pattern?: RegExp;
  /** How often pending events are read. Default 250 ms. */
  readonly pollMs?: number;
  /** How often the directory is listed again for devices plugged in since. Default 5 s. */
  readonly rescanMs?: number;
}

interface Device {
  readonly fd: number;
  /** The start of a record a read cut off (a FIFO can; the kernel always returns whole records). */
  rest: Buffer;
}

/**
 * Activity from the kernel's input devices, whatever the display server:
 * needs read access to /dev/input/event* (root or group `input`). Each open
 * device gets its own copy of the events, so nothing is taken from the viewer.
 *
 * The devices are opened non-blocking and drained on a timer with plain
 * read(2) calls, not read as Node streams: a stream on a character device is
 * a blocking read in libuv's thread pool, and four idle input devices would
 * hold all four of its threads, stalling every other file operation of the
 * agent. A read never blocks here; "nothing yet" is EAGAIN (or, for a FIFO
 * without a writer, end of file).
 */
export class EvdevActivity implements ActivitySource {
  readonly #o: Required<EvdevOptions>;
  readonly #size = inputEventSize();
  readonly #buf: Buffer;
  readonly #devices = new Map<string, Device>();
  /** The last failure logged per device or for the directory (key ''), so a lasting one is logged once. */
  readonly #failed = new Map<string, string>();
  #throttle: ActivityThrottle | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #scanTimer: NodeJS.Timeout | undefined;

  constructor(options: EvdevOptions) {
    this.#o = {
      dir: '/dev/input',
      pattern: /^event\d+$/,
      pollMs: 250,
      rescanMs: 5_000,
      ...(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as EvdevOptions),
    };
    this.#buf = Buffer.alloc(64 * this.#size);
  }

  start(listener: () => void, everyMs: number): void {
    this.stop();
    this.#throttle = new ActivityThrottle(listener, everyMs, (e) =>
      this.#o.logger.err('activity-listener-failed', { source: 'evdev', error: e instanceof Error ? e.message : String(e) }),
    );
    this.#scan();
    this.#pollTimer = setInterval(() => this.#guard(() => this.#poll()), this.#o.pollMs);
    this.#scanTimer = setInterval(() => this.#guard(() => this.#scan()), this.#o.rescanMs);
    this.#pollTimer.unref();
    this.#scanTimer.unref();
  }

  stop(): void {
    clearInterval(this.#pollTimer);
    clearInterval(this.#scanTimer);
    this.#pollTimer = this.#scanTimer = undefined;
    this.#throttle?.stop();
    this.#throttle = undefined;
    for (const path of [...this.#devices.keys()]) this.#drop(path);
    this.#failed.clear();
  }

  /** Nothing thrown escapes into a timer. */
  #guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.#o.logger.err('activity-source-failed', { source: 'evdev', error: e instanceof Error ? e.message : String(e) });
    }
  }

  /** Opens devices that appeared; forgets failures of those that went away. */
  #scan(): void {
    let names: string[];
    try {
      names = readdirSync(this.#o.dir).filter((n) => this.#o.pattern.test(n));
    } catch (e) {
      this.#failure('', e, 'warning');
      return;
    }
    const paths = new Set(names.map((n) => join(this.#o.dir, n)));
    if (paths.size === 0) {
      this.#failure('', Object.assign(new Error('no event devices'), { code: 'ENOENT' }), 'warning');
    } else if (this.#failed.delete('')) {
      this.#o.logger.notice('activity-source-recovered', { source: 'evdev', dir: this.#o.dir });
    }
    for (const path of this.#failed.keys()) if (path !== '' && !paths.has(path)) this.#failed.delete(path);
    for (const path of paths) {
      if (this.#devices.has(path)) continue;
      try {
        const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
        this.#devices.set(path, { fd, rest: Buffer.alloc(0) });
        this.#o.logger.debug('input-device-added', { path });
      } catch (e) {
        this.#failure(path, e, 'warning');
      }
    }
  }

  #poll(): void {
    let input = false;
    for (const [path, dev] of this.#devices) {
      // Bounded, so a device that never stops talking cannot hold the event loop.
      for (let i = 0; i < 16; i++) {
        let n: number;
        try {
          n = readSync(dev.fd, this.#buf, 0, this.#buf.length, null);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
          // ENODEV: unplugged; anything else makes the device as useless.
          this.#drop(path);
          this.#failure(path, e, code === 'ENODEV' ? 'info' : 'warning');
          break;
        }
        if (n === 0) break;
        this.#failed.delete(path);
        const data = dev.rest.length ? Buffer.concat([dev.rest, this.#buf.subarray(0, n)]) : this.#buf.subarray(0, n);
        const whole = data.length - (data.length % this.#size);
        if (!input && hasInput(data.subarray(0, whole), this.#size)) input = true;
        dev.rest = Buffer.from(data.subarray(whole));
        if (n < this.#buf.length) break;
      }
    }
    if (input) this.#throttle?.activity();
  }

  #drop(path: string): void {
    const dev = this.#devices.get(path);
    if (!dev) return;
    this.#devices.delete(path);
    try {
      closeSync(dev.fd);
    } catch {
      // Already unusable; nothing more to release.
    }
  }

  #failure(path: string, e: unknown, level: 'info' | 'warning'): void {
    const err = e as NodeJS.ErrnoException;
    const why = err.code ?? (e instanceof Error ? e.message : String(e));
    if (this.#failed.get(path) === why) return;
    this.#failed.set(path, why);
    const fields = { source: 'evdev', ...(path === '' ? { dir: this.#o.dir } : { path }), error: e instanceof Error ? e.message : String(e) };
    if (level === 'info') this.#o.logger.info('input-device-gone', fields);
    else this.#o.logger.warning(path === '' ? 'activity-source-unavailable' : 'input-device-unreadable', fields);
  }
}
