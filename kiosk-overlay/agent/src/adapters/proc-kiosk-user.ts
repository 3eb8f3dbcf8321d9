import { readdir, readFile, lstat, rm, mkdir, chown, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { StationError } from '../domain/errors.js';
import type { Cleanup, KioskAccount, KioskUser } from '../ports/kiosk-user.js';

/** Where a kiosk account can write besides its home. */
const SHARED_WRITABLE = ['/tmp', '/var/tmp', '/dev/shm'];
const KILL_ROUNDS = 50;
const ROUND_MS = 100;

/** The account's uid, gid and home from /etc/passwd (or whatever `passwd` points at, for tests). */
export async function lookupAccount(name: string, passwd = '/etc/passwd'): Promise<{ uid: number; gid: number; home: string }> {
  const text = await readFile(passwd, 'utf8').catch((e: unknown) => {
    throw new StationError('config-invalid', `${passwd}: ${String(e)}`);
  });
  for (const line of text.split('\n')) {
    const [n, , uid, gid, , home] = line.split(':');
    if (n === name && uid !== undefined && gid !== undefined && home) return { uid: Number(uid), gid: Number(gid), home };
  }
  throw new StationError('config-invalid', `kiosk_user=${name}: no such user`);
}

interface ProcInfo {
  readonly pid: number;
  readonly comm: string;
}

/**
 * The kiosk account's processes, found in /proc by uid (real or effective),
 * whoever started them: a program the visitor got the viewer to spawn counts
 * as much as the viewer. Zombies are dead already and do not count.
 */
async function processesOf(uid: number): Promise<ProcInfo[]> {
  const found: ProcInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    if (!uids || (Number(uids[1]) !== uid && Number(uids[2]) !== uid)) continue;
    if (/^State:\s+Z/m.test(status)) continue;
    found.push({ pid: Number(entry), comm: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?' });
  }
  return found;
}

/** Removes everything under `dir` owned by `uid` (not crossing into other owners' directories). */
async function removeOwned(dir: string, uid: number): Promise<number> {
  let removed = 0;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    if (st.uid === uid) {
      await rm(path, { recursive: true, force: true });
      removed++;
    } else if (st.isDirectory() && !st.isSymbolicLink()) {
      // e.g. /tmp/.X11-unix (root's) may hold nothing of the kiosk's, but a sticky dir might.
      removed += await removeOwned(path, uid);
    }
  }
  return removed;
}

export interface ProcKioskUserOptions {
  readonly account: KioskAccount;
  /** Default /tmp, /var/tmp, /dev/shm; tests point it at their own. */
  readonly sharedWritable?: readonly string[];
  readonly sleep?: (ms: number) => Promise<void>;
}

export class ProcKioskUser implements KioskUser {
  readonly account: KioskAccount;
  readonly #shared: readonly string[];
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(o: ProcKioskUserOptions) {
    if (o.account.uid === 0) throw new StationError('config-invalid', `kiosk_user=${o.account.name}: the kiosk account must not be root`);
    this.account = o.account;
    this.#shared = o.sharedWritable ?? SHARED_WRITABLE;
    this.#sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async endAll(): Promise<Cleanup> {
    const { uid } = this.account;
    let killed = 0;
    let left: ProcInfo[] = [];
    // SIGKILL, not TERM: nothing of the visitor's gets a chance to save or hide anything.
    // Rounds, because a process may fork while we scan.
    for (let round = 0; round < KILL_ROUNDS; round++) {
      left = await processesOf(uid);
      if (left.length === 0) break;
      for (const p of left) {
        try {
          process.kill(p.pid, 'SIGKILL');
          killed++;
        } catch {
          // gone meanwhile
        }
      }
      await this.#sleep(ROUND_MS);
    }
    if (left.length > 0 && (await processesOf(uid)).length > 0) {
      throw new StationError('cleanup-failed', `processes of ${this.account.name} survive SIGKILL: ${left.map((p) => `${p.pid}(${p.comm})`).join(' ')}`);
    }
    let removed = 0;
    for (const dir of this.#shared) removed += await removeOwned(dir, uid);
    removed += await this.#freshHome();
    return { killed, removed };
  }

  /** The home emptied and made again, owned by the account: the next visitor starts from nothing. */
  async #freshHome(): Promise<number> {
    const { home, uid, gid } = this.account;
    const names = await readdir(home).catch(() => [] as string[]);
    await rm(home, { recursive: true, force: true });
    await mkdir(home, { recursive: true, mode: 0o700 });
    await chown(home, uid, gid);
    await chmod(home, 0o700);
    return names.length;
  }
}
