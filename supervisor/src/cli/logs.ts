import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Where journald listens; without it there is no journal to read. */
const JOURNAL_SOCKET = '/run/systemd/journal/socket';
export const SUPERVISOR_UNIT = 'tabula-supervisor';

/** journalctl's arguments for `tabulactl logs [-f] [-n N]`. */
export function journalArgs(opts: { follow: boolean; lines?: number }): string[] {
  return ['--unit', SUPERVISOR_UNIT, '--no-pager', ...(opts.follow ? ['--follow'] : []), ...(opts.lines === undefined ? [] : ['--lines', String(opts.lines)])];
}

export const NO_JOURNAL = `this host has no systemd journal (journald is not running), so there is no log of ${SUPERVISOR_UNIT} to show: the supervisor writes its log to its standard output and error, wherever whoever started it keeps them`;

/** Runs journalctl on the supervisor's unit, its output straight to the terminal; resolves with its exit code. */
export function showLogs(opts: { follow: boolean; lines?: number }): Promise<number | 'no-journal'> {
  if (!existsSync(JOURNAL_SOCKET)) return Promise.resolve('no-journal');
  return new Promise((resolve) => {
    const child = spawn('journalctl', journalArgs(opts), { stdio: 'inherit' });
    child.once('error', () => resolve('no-journal'));
    child.once('close', (code) => resolve(code ?? 1));
  });
}
