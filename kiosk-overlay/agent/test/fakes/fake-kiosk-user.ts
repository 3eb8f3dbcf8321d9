import { StationError } from '../../src/domain/errors.js';
import type { Cleanup, KioskAccount, KioskUser } from '../../src/ports/kiosk-user.js';
import { Trace } from './trace.js';

/** Counts the cleanups; `failures` of them reject as a stuck process would make them. */
export class FakeKioskUser implements KioskUser {
  readonly account: KioskAccount = {
    name: 'kiosk',
    uid: 990,
    gid: 990,
    home: '/var/lib/tabula-kiosk',
    env: { DISPLAY: ':0', HOME: '/var/lib/tabula-kiosk' },
  };
  endAllCalls = 0;
  failures = 0;

  constructor(private readonly trace = new Trace()) {}

  endAll(): Promise<Cleanup> {
    this.endAllCalls++;
    this.trace.note('kiosk:endAll');
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new StationError('cleanup-failed', 'pid 4242 (remote-viewer) survived SIGKILL'));
    }
    return Promise.resolve({ killed: 2, removed: 7 });
  }

  /** Resolves once endAll was called `n` times in all. */
  cleanedUp(n: number): Promise<void> {
    return this.trace.until(() => this.endAllCalls >= n).then(() => undefined);
  }
}
