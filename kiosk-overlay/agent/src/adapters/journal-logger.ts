import type { Fields, Logger } from '../ports/logger.js';

/** `<N>event=… key=value…` lines on stderr: the journal adds time and unit. */
export class JournalLogger implements Logger {
  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(l)) {}

  err(event: string, fields?: Fields): void {
    this.#line(3, event, fields);
  }
  warning(event: string, fields?: Fields): void {
    this.#line(4, event, fields);
  }
  notice(event: string, fields?: Fields): void {
    this.#line(5, event, fields);
  }
  info(event: string, fields?: Fields): void {
    this.#line(6, event, fields);
  }
  debug(event: string, fields?: Fields): void {
    if (process.env.TABULA_DEBUG) this.#line(7, event, fields);
  }

  #line(priority: number, event: string, fields: Fields = {}): void {
    let line = `<${priority}>event=${event}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const s = String(v);
      line += ` ${k}=${/^[^\s"=]+$/.test(s) ? s : JSON.stringify(s)}`;
    }
    this.write(line.replace(/\n/g, ' ') + '\n');
  }
}
