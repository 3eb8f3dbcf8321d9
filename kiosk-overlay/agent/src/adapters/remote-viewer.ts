import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StationError } from '../domain/errors.js';
import type { UsbPolicy } from '../domain/usb-policy.js';
import { viewerUsbArgs } from '../render/usb-filter.js';
import { renderVvFile } from '../render/vv-file.js';
import type { KioskAccount } from '../ports/kiosk-user.js';
import type { Logger } from '../ports/logger.js';
import type { RunningViewer, Viewer, ViewerLaunch } from '../ports/viewer.js';
import { spawnAsKiosk } from './kiosk-process.js';

export interface RemoteViewerOptions {
  readonly account: KioskAccount;
  readonly logger: Logger;
  readonly program: () => string;
  readonly fullscreen: () => boolean;
  readonly usb: () => UsbPolicy;
  /** remote-viewer's own output goes here (debugging a station); default: the journal via the logger. */
  readonly output?: (chunk: string) => void;
}

const STOP_GRACE_MS = 2_000;
/** remote-viewer reads and deletes the file at once; whatever is left after this is removed by us. */
const VV_BACKSTOP_MS = 10_000;

/**
 * remote-viewer, as the kiosk account. The ticket travels in a `.vv` file
 * (never on the command line, where any process could read it), readable only
 * by the kiosk account, which remote-viewer deletes once read.
 */
export class RemoteViewer implements Viewer {
  constructor(private readonly o: RemoteViewerOptions) {}

  async start(launch: ViewerLaunch): Promise<RunningViewer> {
    const { account } = this.o;
    const vv = join(account.home, `session-${randomBytes(6).toString('hex')}.vv`);
    const fullscreen = this.o.fullscreen();
    const usb = this.o.usb();
    try {
      await writeFile(vv, renderVvFile({ ...launch, fullscreen, usbRedirect: usb.redirect }), { mode: 0o600, flag: 'wx' });
      await chown(vv, account.uid, account.gid);
    } catch (e) {
      await rm(vv, { force: true });
      throw new StationError('viewer-failed', `cannot write ${vv}: ${String(e)}`, { cause: e });
    }
    // Kiosk mode: full screen that cannot be left, no menus; and it quits when the console goes away.
    const args = [...(fullscreen ? ['--kiosk', '--kiosk-quit=on-disconnect'] : []), ...viewerUsbArgs(usb), vv];
    let child: ChildProcess;
    try {
      child = spawnAsKiosk(account, this.o.program(), args, ['ignore', 'pipe', 'pipe']);
    } catch (e) {
      await rm(vv, { force: true });
      throw new StationError('viewer-failed', `cannot start ${this.o.program()}: ${String(e)}`, { cause: e });
    }
    const out = this.o.output ?? ((s: string) => this.o.logger.debug('viewer-output', { text: s.trim().slice(0, 300) }));
    for (const s of [child.stdout, child.stderr]) {
      s?.setEncoding('utf8');
      s?.on('data', out);
    }
    const exited = new Promise<number | null>((resolve) => {
      child.once('error', (e) => {
        this.o.logger.err('viewer-failed', { program: this.o.program(), error: e.message });
        resolve(null);
      });
      child.once('exit', (code) => resolve(code));
    });
    const backstop = setTimeout(() => void rm(vv, { force: true }), VV_BACKSTOP_MS);
    void exited.then(() => {
      clearTimeout(backstop);
      void rm(vv, { force: true });
    });
    return {
      exited,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return void (await exited);
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      },
    };
  }
}
