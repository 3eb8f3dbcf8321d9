/** The service manager (sd_notify). Outside systemd every call does nothing. */
export interface Notifier {
  ready(): void;
  status(text: string): void;
  watchdog(): void;
  stopping(): void;
  /** How often the watchdog must be pinged, or undefined when there is no watchdog. */
  watchdogIntervalMs(): number | undefined;
}
