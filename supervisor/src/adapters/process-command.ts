import { spawn } from 'node:child_process';
import type { CommandResult, RunCommand } from '../ports/commands.js';

/** stderr kept for the error message. */
const TAIL_BYTES = 2048;
/** A command that hangs this long is killed (its caller waits on a D-Bus call). */
const TIMEOUT_MS = 300_000;

/**
 * Runs a program to its end. Its stdout goes to the supervisor's (the
 * journal); its stderr too, and the end of it is kept for the caller.
 */
export const runProcess: RunCommand = (argv, env = {}) =>
  new Promise<CommandResult>((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) return reject(new Error('no program given'));
    const child = spawn(file, args, { stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, ...env } });
    let tail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      process.stderr.write(chunk);
      tail = (tail + chunk).slice(-TAIL_BYTES);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ ...(code === null ? {} : { code }), ...(signal === null ? {} : { signal }), stderrTail: tail });
    });
  });
