/** The pictures the kiosk shows: local folders, and the server's slideshow. */
export interface Pictures {
  /** The idle slideshow's pictures (absolute paths the kiosk account can read). */
  slideshow(): Promise<string[]>;
  /** The waiting animation's frames. */
  animation(): Promise<string[]>;
}
