/** Where the station's settings come from: its own file, and the server's client.conf. */
export interface SettingsSource {
  /** The local file's text; `origin` names it in errors. Rejects with `config-unreadable`. */
  local(): Promise<{ readonly origin: string; readonly text: string }>;
  /** The server's file at `url`, or undefined when the server does not answer. */
  server(url: string): Promise<string | undefined>;
  /** The host name, the default station name. */
  hostname(): string;
}
