import { rm, writeFile } from 'node:fs/promises';
import { run, TABULACTL } from './env.js';
import type { CtlResult } from './supervisor-process.js';

/** Where a test's bus policy drop-in and polkit rule go; the leak check looks for these names. */
export const TEST_BUS_POLICY = '/etc/dbus-1/system.d/tabula-it-admin.conf';
export const TEST_POLKIT_RULE = '/etc/polkit-1/rules.d/49-tabula-it-admin.rules';

/** A throwaway system account (no home, no shell), optionally in group "tabula". */
export async function addUser(name: string, tabula: boolean): Promise<void> {
  await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', ...(tabula ? ['--groups', 'tabula'] : []), name]);
}

export async function removeUser(name: string): Promise<void> {
  await run('userdel', [name]).catch(() => undefined);
  await run('groupdel', [name]).catch(() => undefined);
}

/** tabulactl run as `user` with that user's own groups only. */
export async function tabulactlAs(user: string, ...args: string[]): Promise<CtlResult> {
  try {
    const { stdout, stderr } = await run('setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', process.execPath, TABULACTL, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

async function reloadBus(): Promise<void> {
  await run('dbus-send', ['--system', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.ReloadConfig']);
}

/** A bus policy drop-in letting `user` send anything to the supervisor (as a site delegating admin would). */
export async function allowOnBus(user: string): Promise<void> {
  await writeFile(
    TEST_BUS_POLICY,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><policy user="${user}"><allow send_destination="org.tabula.Supervisor1"/></policy></busconfig>
`,
    { mode: 0o644 },
  );
  await reloadBus();
}

/** A polkit rule granting `user` the given action (polkitd takes up rules.d changes by itself). */
export async function grantPolkit(user: string, action: string): Promise<void> {
  await writeFile(TEST_POLKIT_RULE, `polkit.addRule(function (action, subject) {\n  if (action.id == "${action}" && subject.user == "${user}") return polkit.Result.YES;\n});\n`, { mode: 0o644 });
}

/** Removes the drop-in and the rule (whether or not they were made). */
export async function removeGrants(): Promise<void> {
  await rm(TEST_POLKIT_RULE, { force: true });
  await rm(TEST_BUS_POLICY, { force: true });
  await reloadBus();
}
