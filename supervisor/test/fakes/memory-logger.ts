import type { Fields, Logger } from '../../src/ports/logger.js';

export type Level = 'err' | 'warning' | 'notice' | 'info' | 'debug';

export interface LogRecord {
  readonly level: Level;
  readonly event: string;
  readonly fields: Fields;
}

export class MemoryLogger implements Logger {
  readonly records: LogRecord[] = [];

  err(event: string, fields: Fields = {}): void {
    this.records.push({ level: 'err', event, fields });
  }

  warning(event: string, fields: Fields = {}): void {
    this.records.push({ level: 'warning', event, fields });
  }

  notice(event: string, fields: Fields = {}): void {
    this.records.push({ level: 'notice', event, fields });
  }

  info(event: string, fields: Fields = {}): void {
    this.records.push({ level: 'info', event, fields });
  }

  debug(event: string, fields: Fields = {}): void {
    this.records.push({ level: 'debug', event, fields });
  }

  /** The records with this event code. */
  find(event: string): LogRecord[] {
    return this.records.filter((r) => r.event === event);
  }
}
