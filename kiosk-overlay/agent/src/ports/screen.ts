/**
 * What the kiosk shows. The screen is a separate program running as the kiosk
 * user (see screen/screen.js); the agent only ever says which view to show.
 */
export interface PoolChoice {
  readonly name: string;
  /** What the visitor reads on the button (the pool's label, else its name). */
  readonly label: string;
  /** VMs ready now, as WELCOME reported them. */
  readonly ready: number;
}

export type ScreenView =
  /** Idle: the slideshow, with the invitation to start. */
  | { readonly kind: 'slideshow'; readonly images: readonly string[]; readonly intervalS: number; readonly prompt: string }
  /** Idle for longer than the blanking period: a black screen; a touch brings the slideshow back. */
  | { readonly kind: 'blank' }
  /** More than one pool offered: the visitor picks the system. */
  | { readonly kind: 'menu'; readonly title: string; readonly pools: readonly PoolChoice[] }
  /** A VM is being prepared: the animation, and the place in the queue when the server gave one. */
  | { readonly kind: 'waiting'; readonly images: readonly string[]; readonly intervalS: number; readonly message: string; readonly position?: number }
  /** The desktop is under the viewer; the screen shows a plain message behind it. */
  | { readonly kind: 'message'; readonly title: string; readonly detail: string }
  /** The server cannot be reached or refused: never a desktop or a shell, just this, with the next retry. */
  | { readonly kind: 'unavailable'; readonly title: string; readonly detail: string };

/** The server's end-of-session warning, drawn above everything (also above the viewer). */
export interface Countdown {
  readonly reason: string;
  /** Seconds left when the warning arrived; the screen counts down by itself. */
  readonly seconds: number;
  readonly message: string;
}

export type ScreenEvent =
  /** Any key, click or touch on the slideshow, blank or unavailable view. */
  | { readonly kind: 'touched' }
  /** A pool picked on the menu. */
  | { readonly kind: 'chose'; readonly pool: string }
  /** The screen program died by itself; the adapter starts it again, showing the current view. */
  | { readonly kind: 'exited'; readonly code: number | null };

export interface Screen {
  /** Shows `view` (starting the screen program if it is not running). */
  show(view: ScreenView): void;
  /** Shows or removes (`null`) the countdown overlay. */
  countdown(c: Countdown | null): void;
  onEvent(listener: (e: ScreenEvent) => void): void;
  /** Stops the screen program; `show` starts it again. */
  stop(): Promise<void>;
}
