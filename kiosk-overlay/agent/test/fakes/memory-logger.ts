import type { Fields, Logger } from '../../src/ports/logger.js';
import { Trace } from './trace.js';

export type Level = 'err' | 'warning' | 'notice' | 'info' | 'debug';

export interface LogRecord {
  readonly level: Level;
  readonly event: string;
  readonly fields: Fields;
}

export class MemoryLogger implements Logger {
  readonly records: LogRecord[] = [];

  constructor(private readonly trace = new Trace()) {}

  err(event: string, fields: Fields = {}): void {
    this.#add('err', event, fields);
  }

  warning(event: string, fields: Fields = {}): void {
    this.#add('warning', event, fields);
  }

  notice(event: string, fields: Fields = {}): void {
    this.#add('notice', event, fields);
  }

  info(event: string, fields: Fields = {}): void {
    this.#add('info', event, fields);
  }

  debug(event: string, fields: Fields = {}): void {
    this.#add('debug', event, fields);
  }

  /** The records with this event code. */
  find(event: string): LogRecord[] {
    return this.records.filter((r) => r.event === event);
  }

  /** The `n`th record (from 1) with this event code, once it is there. */
  logged(event: string, n = 1): Promise<LogRecord> {
    return this.trace.until(() => this.find(event)[n - 1]);
  }

  #add(level: Level, event: string, fields: Fields): void {
    this.records.push({ level, event, fields });
    this.trace.changed();
  }
}
