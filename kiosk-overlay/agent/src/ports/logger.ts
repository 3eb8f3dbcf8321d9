export type Fields = Readonly<Record<string, string | number | boolean | undefined>>;

/** One journal line per record: `<N>event=… key=value…`. */
export interface Logger {
  err(event: string, fields?: Fields): void;
  warning(event: string, fields?: Fields): void;
  notice(event: string, fields?: Fields): void;
  info(event: string, fields?: Fields): void;
  debug(event: string, fields?: Fields): void;
}
