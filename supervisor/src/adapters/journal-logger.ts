import type { Fields, Logger } from '../ports/logger.js';

/**
 * Journald-friendly lines: an sd-daemon "<N>" priority prefix, then
 * `event=… key=value…`. No colours, no timestamps (the journal adds them).
 */
export class JournalLogger implements Logger {
  readonly #write: (line: string) => void;
  readonly #debug: boolean;

  constructor(write: (line: string) => void = (l) => process.stderr.write(l), options: { debug?: boolean } = {}) {
    this.#write = write;
    this.#debug = options.debug ?? false;
  }

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
    if (this.#debug) this.#line(7, event, fields);
  }

  #line(priority: number, event: string, fields: Fields = {}): void {
    let line = `<${priority}>event=${event}`;
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${quote(String(v))}`;
    this.#write(line.replace(/\n/g, ' ') + '\n');
  }
}

export function quote(v: string): string {
  return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
}
