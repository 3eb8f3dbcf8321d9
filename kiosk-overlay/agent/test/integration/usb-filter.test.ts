// What the agent hands remote-viewer (the USB filter options and the .vv
// file), checked by remote-viewer itself: its own filter parser, its own .vv
// reader, and a real Spice server (a diskless QEMU) for the ticket, the USB
// channel and the hotkeys. Everything runs on a private Xvfb.
import t, { type Test } from 'tap';
import { startXDisplay } from '../../../../supervisor/test/helpers/x-display.js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { DEFAULT_USB_POLICY, type UsbPolicy } from '../../src/domain/usb-policy.js';
import { renderUsbFilter, viewerUsbArgs } from '../../src/render/usb-filter.js';
import { renderVvFile, type VvFileOptions } from '../../src/render/vv-file.js';

const run = promisify(execFile);

const DEVICE_POLICY: UsbPolicy = {
  redirect: true,
  allowClasses: ['mass-storage', 'printer', 'vendor'],
  denyClasses: ['hid', 'wireless'],
  allowDevices: [{ vendor: 0x05e0, product: 0x1200 }],
  denyDevices: [
    { vendor: 0x0781, product: 0x5567 },
    { vendor: 0xabcd, product: 0x00ef },
  ],
};

/** Ends a child: SIGTERM, SIGKILL after 3 s. */
async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(kill);
  }
}

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
  /** Resolves with the output once it matches; rejects after `timeoutMs` or when the process ends first. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

function startProc(t: Test, cmd: string, args: string[], env: NodeJS.ProcessEnv, stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe']): Proc {
  const child = spawn(cmd, args, { env, stdio });
  let out = '';
  for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (e) => {
      out += `\n${cmd}: ${e.message}\n`;
      resolve(null);
    });
    child.once('exit', (code) => resolve(code));
  });
  let ended = false;
  void exited.then(() => (ended = true));
  const stop = () => stopChild(child, exited);
  t.teardown(stop);
  return {
    child,
    exited,
    output: () => out,
    stop,
    async waitFor(re, timeoutMs = 15_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        if (re.test(out)) return out;
        if (ended) throw new Error(`${cmd} ended (${child.exitCode ?? child.signalCode}) before ${re}:\n${out.slice(-3000)}`);
        if (performance.now() > deadline) throw new Error(`${cmd}: no ${re} in ${timeoutMs} ms:\n${out.slice(-3000)}`);
        await delay(25);
      }
    },
  };
}

/** A private X server (the shared test display; it runs with -noreset, which xprintidle needs). */
async function startXvfb(t: Test): Promise<string> {
  const x = await startXDisplay({ screen: '1024x768x24', name: 'agent-x' });
  t.teardown(() => x.close());
  return `:${x.display}`;
}

/** A port nothing listens on (taken from the kernel, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function lines(out: string): string[] {
  return out.split('\n').map((l) => l.trimEnd());
}

/** The filter spice-gtk accepted, as it logs it with --spice-debug. */
function filterSet(out: string, which: 'auto-connect' | 'redirect-on-connect', filter: string): boolean {
  return lines(out).some((l) => l.endsWith(`${which} filter set to ${filter}`));
}

t.test('remote-viewer and the agent’s USB options and .vv files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabula-it-usb-filter-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const display = await startXvfb(t);
  // remote-viewer keeps settings and caches: keep them in the test's directory, not root's home.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DISPLAY: display,
    HOME: join(dir, 'home'),
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    NO_AT_BRIDGE: '1',
  };
  delete env['VIRT_VIEWER_KEEP_FILE']; // would keep the .vv file despite delete-this-file
  await mkdir(join(dir, 'home'));
  const viewer = (t: Test, args: string[]) => startProc(t, 'remote-viewer', ['--spice-debug', ...args], env);
  let files = 0;
  const vvFile = async (text: string) => {
    const path = join(dir, `connect-${++files}.vv`);
    await writeFile(path, text, { mode: 0o600 });
    return path;
  };

  await t.test('remote-viewer’s parser accepts the filters we render', async (t) => {
    const closed = await freePort();
    for (const [name, policy] of [
      ['default policy', DEFAULT_USB_POLICY],
      ['device lists', DEVICE_POLICY],
    ] as const) {
      const filter = renderUsbFilter(policy);
      const rv = viewer(t, [...viewerUsbArgs(policy), `spice://127.0.0.1:${closed}`]);
      // The filters are set when the session is made, before it connects.
      const out = await rv.waitFor(new RegExp(`open host 127\\.0\\.0\\.1:${closed}`));
      await rv.stop();
      t.ok(filterSet(out, 'auto-connect', filter), `${name}: auto-connect filter set to ${filter}`);
      t.ok(filterSet(out, 'redirect-on-connect', filter), `${name}: redirect-on-connect filter set`);
      t.notMatch(out, /Error parsing/, `${name}: no parse error`);
    }
  });

  await t.test('a broken filter is refused (so the check above can fail)', async (t) => {
    const closed = await freePort();
    const good = renderUsbFilter(DEFAULT_USB_POLICY);
    for (const [name, broken] of [
      ['a rule with four fields', good.replace('0x03,-1,-1,-1,0', '0x03,-1,-1,0')],
      ['a class above 0xff', good.replace('0x08,', '0x108,')],
    ] as const) {
      t.not(broken, good, `${name}: really changed`);
      const rv = viewer(t, [`--spice-usbredir-auto-redirect-filter=${broken}`, `--spice-usbredir-redirect-on-connect=${broken}`, `spice://127.0.0.1:${closed}`]);
      const out = await rv.waitFor(new RegExp(`open host 127\\.0\\.0\\.1:${closed}`));
      await rv.stop();
      t.match(out, /Error parsing auto-connect-filter string/, `${name}: auto-connect refused`);
      t.match(out, /Error parsing redirect-on-connect string/, `${name}: redirect-on-connect refused`);
      t.notOk(filterSet(out, 'auto-connect', broken), `${name}: not set`);
    }
  });

  await t.test('a .vv file is read, obeyed and deleted', async (t) => {
    const closed = await freePort();
    const path = await vvFile(renderVvFile({ host: '127.0.0.1', port: closed, password: 'x', title: 'tabula-vv-test', fullscreen: false, usbRedirect: true }));
    const rv = viewer(t, [...viewerUsbArgs(DEFAULT_USB_POLICY), path]);
    const out = await rv.waitFor(new RegExp(`open host 127\\.0\\.0\\.1:${closed}`));
    t.pass(`it connects to the file's host and port (127.0.0.1:${closed})`);
    t.notOk(existsSync(path), 'the file is gone once read (delete-this-file=1)');
    t.ok(filterSet(out, 'auto-connect', renderUsbFilter(DEFAULT_USB_POLICY)), 'the command line filter holds beside the file');
    t.notMatch(out, /Invalid hotkey|Unknown hotkey|CRITICAL|has no property/, 'no complaint about the file');
    t.equal(rv.child.exitCode, null, 'still running');
    await rv.stop();
  });

  await t.test('against a Spice server: ticket, USB channel, hotkeys', async (t) => {
    // Escapes every GKeyFile rule at once: leading blank, backslash, tab, '#', '=', trailing blank.
    const password = ' p\\a ss\tw#rd=; ';
    await writeFile(join(dir, 'ticket'), password, { mode: 0o600 });
    const port = await freePort();
    const qemu = startProc(
      t,
      'qemu-system-x86_64',
      [
        ...['-machine', 'pc', '-accel', 'tcg', '-m', '64', '-nodefaults', '-vga', 'std', '-display', 'none'],
        ...['-object', `secret,id=ticket,file=${join(dir, 'ticket')}`],
        ...['-spice', `port=${port},addr=127.0.0.1,password-secret=ticket`],
        // A USB redirection port, so the server offers a usbredir channel.
        ...['-device', 'qemu-xhci', '-chardev', 'spicevmc,name=usbredir,id=usbredir0', '-device', 'usb-redir,chardev=usbredir0'],
      ],
      process.env,
    );
    await waitForPort(port, qemu);
    const vv = (o: Partial<VvFileOptions> = {}) => renderVvFile({ host: '127.0.0.1', port, password, title: 'tabula-rv', fullscreen: false, usbRedirect: true, ...o });
    const READY = /primary: \d+x\d+/;

    await t.test('the ticket arrives intact; a wrong one is refused', async (t) => {
      const rv = viewer(t, [...viewerUsbArgs(DEFAULT_USB_POLICY), await vvFile(vv())]);
      const out = await rv.waitFor(READY);
      t.pass('connected and showing the console');
      await rv.waitFor(/usbredir-\d+:\d+: spice_channel_constructed/);
      t.pass('with redirection on, the USB channel is opened');
      t.ok(filterSet(out, 'redirect-on-connect', renderUsbFilter(DEFAULT_USB_POLICY)), 'with our filter');
      await rv.stop();
      const wrong = viewer(t, [await vvFile(vv({ password: 'wrong' }))]);
      await wrong.waitFor(/link result: reply 7/); // SPICE_LINK_ERR_PERMISSION_DENIED
      t.notMatch(wrong.output(), READY, 'a wrong ticket gets no console');
      await wrong.stop();
    });

    await t.test('redirection off: no USB channel', async (t) => {
      const rv = viewer(t, [...viewerUsbArgs({ ...DEFAULT_USB_POLICY, redirect: false }), await vvFile(vv({ usbRedirect: false }))]);
      await rv.waitFor(READY);
      await rv.waitFor(/usbredir channel is disabled, not creating it/);
      t.notMatch(rv.output(), /usbredir-\d+:\d+: spice_channel_constructed/);
      await rv.stop();
    });

    await t.test('no hotkey releases the grab or zooms; without our file they do', async (t) => {
      const xdotool = async (...args: string[]) => (await run('xdotool', args, { env, timeout: 10_000 })).stdout.trim();
      /** Starts a viewer, focuses its window and clicks into it, so it grabs keyboard and pointer. */
      const grabbed = async (t: Test, target: string, title: string) => {
        const rv = viewer(t, ['--debug', `--title=${title}`, target]);
        await rv.waitFor(READY);
        const win = (await xdotool('search', '--sync', '--name', `^${title}`)).split('\n')[0]!;
        await xdotool('windowfocus', '--sync', win);
        await xdotool('mousemove', '--window', win, '100', '100');
        await xdotool('click', '1');
        await rv.waitFor(/grab keyboard/);
        return { rv, win, geometry: async () => /Geometry: (\S+)/.exec(await xdotool('getwindowgeometry', win))?.[1] };
      };
      const ungrabs = (rv: Proc) => (rv.output().match(/ungrab keyboard/g) ?? []).length;

      const ours = await grabbed(t, await vvFile(vv({ title: 'tabula-ours' })), 'tabula-ours');
      const before = ungrabs(ours.rv);
      await xdotool('key', 'ctrl+alt');
      await delay(1_500);
      t.equal(ungrabs(ours.rv), before, 'our file: Ctrl+Alt does not release the grab');
      const size = await ours.geometry();
      await xdotool('key', 'ctrl+plus');
      await delay(1_500);
      t.equal(await ours.geometry(), size, `our file: Ctrl++ does not zoom (${size})`);
      t.notMatch(ours.rv.output(), /Invalid hotkey|CRITICAL/, 'no complaint about our hotkeys');
      await ours.rv.stop();

      const withRelease = await grabbed(t, await vvFile(vv({ title: 'tabula-no-release-line' }).replace('release-cursor=\n', '')), 'tabula-no-release-line');
      const before2 = ungrabs(withRelease.rv);
      await xdotool('key', 'ctrl+alt');
      await withRelease.rv.waitFor(new RegExp(`(ungrab keyboard[^]*){${before2 + 1}}`), 3_000);
      t.pass('without release-cursor= in the file, Ctrl+Alt releases the grab');
      await withRelease.rv.stop();

      const plain = await grabbed(t, `spice://127.0.0.1:${port}?password=${encodeURIComponent(password)}`, 'tabula-plain-uri');
      const size2 = await plain.geometry();
      await xdotool('key', 'ctrl+plus');
      const deadline = performance.now() + 3_000;
      while ((await plain.geometry()) === size2 && performance.now() < deadline) await delay(100);
      t.not(await plain.geometry(), size2, `without a .vv file, remote-viewer's default Ctrl++ zooms (${size2} → ${await plain.geometry()})`);
      await plain.rv.stop();
    });

    await qemu.stop();
  });
});

async function waitForPort(port: number, proc: Proc): Promise<void> {
  const deadline = performance.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc.child.exitCode !== null || performance.now() > deadline) throw new Error(`no Spice server on port ${port}:\n${proc.output()}`);
    await delay(100);
  }
}
