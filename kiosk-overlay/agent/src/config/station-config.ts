import type { UsbPolicy } from '../domain/usb-policy.js';

/** The station's settings, validated and frozen (see station-conf.ts for the file). */
export interface StationConfig {
  /**
   * The Tabula server on the station LAN (the original `server_ip`, or the
   * DHCP lease's); undefined while no source names it, the normal state
   * before the first lease.
   */
  readonly serverAddress?: string;
  /** Where serverAddress came from (a file and line, a lease); without one, every source looked at. For the log. */
  readonly serverOrigin: string;
  /** The original `vdi_signal_port`. */
  readonly signalPort: number;
  /** The original `vdi_spice_port`: where a v0 server forwards the console. */
  readonly spicePort: number;
  /** The server's station HTTP endpoint port (client.conf, slideshow). */
  readonly httpPort: number;
  /** Fetch `/client.conf` from the server before each session (its keys under the local file's). */
  readonly serverConfig: boolean;
  /** Pictures of the waiting animation (the original `animation_folder`). */
  readonly animationFolder: string;
  /** Pictures of the idle slideshow (the original `background_folder`). */
  readonly backgroundFolder: string;
  /** Where the server lists more slideshow pictures (JSON list); '' for none. */
  readonly slideshowUrl: string;
  readonly slideshowIntervalS: number;
  /** Seconds of slideshow without a touch before the screen goes black; 0: never. */
  readonly blankAfterS: number;
  /** This station's name in HELLO (default: the host name). */
  readonly stationName: string;
  /** 'auto': v1, falling back to v0 when the server turns out to speak only v0. */
  readonly protocol: 'auto' | 'v1' | 'v0';
  /** The pool to ask for; '' lets the visitor choose when the server offers several. */
  readonly pool: string;
  /** What the menu shows for each pool name. */
  readonly poolLabels: Readonly<Record<string, string>>;
  /** Seconds the OS menu waits for a choice before going back to the slideshow. */
  readonly menuTimeoutS: number;
  /** The unprivileged account the screen and the viewer run as. */
  readonly kioskUser: string;
  /** The display the kiosk's programs use: an X display (`:0`) or a Wayland socket name (`wayland-0`). */
  readonly display: string;
  /** How the visitor's activity during a session is noticed. */
  readonly activity: 'x11' | 'evdev' | 'none';
  /** INPUT is sent at most this often while the visitor is active. */
  readonly inputReportS: number;
  /** Backoff between attempts to reach the server. */
  readonly retryMinS: number;
  readonly retryMaxS: number;
  readonly usb: UsbPolicy;
  /** The Spice client. */
  readonly viewer: string;
  /** Full screen (the kiosk); off only to keep the guest's pixels 1:1 on a test display. */
  readonly viewerFullscreen: boolean;
  /** The screen program (gjs). */
  readonly screenProgram: string;
  /** The invitation on the slideshow. */
  readonly prompt: string;
}
