import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { KioskAccount } from '../ports/kiosk-user.js';

/**
 * Starts a program as the kiosk account, in its home, with only the kiosk's
 * environment (nothing of the agent's leaks in: no credentials, no paths).
 * When the agent already runs as that account (development), no switch.
 */
export function spawnAsKiosk(account: KioskAccount, command: string, args: readonly string[], stdio: StdioOptions): ChildProcess {
  const same = process.getuid?.() === account.uid;
  return spawn(command, [...args], {
    cwd: account.home,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...account.env },
    stdio,
    ...(same ? {} : { uid: account.uid, gid: account.gid }),
  });
}
