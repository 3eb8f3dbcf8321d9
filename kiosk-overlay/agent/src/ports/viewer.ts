/** What the Spice client is told: where the console is, and its one-time ticket. */
export interface ViewerLaunch {
  readonly host: string;
  readonly port: number;
  /** The ticket (v1); absent for a v0 server, whose consoles take none. */
  readonly password?: string;
  /** The window title (never the VM's name: the visitor has no use for it). */
  readonly title: string;
}

export interface RunningViewer {
  /** Its exit code (null: killed by a signal); resolves however it ends. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

export interface Viewer {
  /** Starts the viewer as the kiosk account; rejects with `viewer-failed` if it cannot start. */
  start(launch: ViewerLaunch): Promise<RunningViewer>;
}
