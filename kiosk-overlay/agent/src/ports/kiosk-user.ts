/**
 * The unprivileged account the visitor's programs run as (the screen and the
 * viewer). The agent itself runs apart from it, so that ending a session can
 * kill everything the account runs without killing the agent.
 */
export interface KioskAccount {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** HOME, and the parent of the XDG dirs: emptied at every session end. */
  readonly home: string;
  /** Environment for programs on the kiosk display (DISPLAY or WAYLAND_DISPLAY, HOME, XDG_*). */
  readonly env: Readonly<Record<string, string>>;
}

export interface Cleanup {
  /** Processes killed. */
  readonly killed: number;
  /** Files and directories removed. */
  readonly removed: number;
}

export interface KioskUser {
  readonly account: KioskAccount;
  /**
   * Kills every process of the account and removes every file it owns in the
   * places it can write (its home, /tmp, /var/tmp, /dev/shm); resolves once no
   * process of it is left. Rejects with `cleanup-failed` if one survives.
   */
  endAll(): Promise<Cleanup>;
}
