import { asTabulaError, TabulaError } from '../domain/errors.js';
import type { RunCommand } from '../ports/commands.js';
import type { Logger } from '../ports/logger.js';

/** What a caller must pass, word for word: a factory reset is never one stray call away. */
export const FACTORY_RESET_CONFIRM = 'factory-reset';

export interface FactoryResetDeps {
  /** The configured command (argv) in force now; it may change with a reload. */
  readonly command: () => readonly string[];
  /** Environment for the command: where the config and the state are. */
  readonly env: () => Readonly<Record<string, string>>;
  readonly run: RunCommand;
  readonly logger: Logger;
}

/**
 * Asks the appliance for a factory reset: runs `[supervisor]
 * factory_reset_command` with "keep-images" or "erase-all" and returns once it
 * exited 0. The command does the reset (typically it leaves a request for the
 * next boot and reboots); the supervisor only guards and reports.
 */
export class FactoryReset {
  readonly #deps: FactoryResetDeps;
  #running = false;

  constructor(deps: FactoryResetDeps) {
    this.#deps = deps;
  }

  async run(keepImages: boolean, confirm: string): Promise<void> {
    if (confirm !== FACTORY_RESET_CONFIRM) {
      throw new TabulaError('invalid-argument', `the confirmation must be the words "${FACTORY_RESET_CONFIRM}" (got ${JSON.stringify(confirm.slice(0, 64))}); nothing was done`);
    }
    if (this.#running) throw new TabulaError('conflict', 'a factory reset is already under way');
    this.#running = true;
    const { logger } = this.#deps;
    const mode = keepImages ? 'keep-images' : 'erase-all';
    const argv = [...this.#deps.command(), mode];
    try {
      logger.warning('factory-reset-started', { mode, command: argv.join(' ') });
      let result;
      try {
        result = await this.#deps.run(argv, this.#deps.env());
      } catch (e) {
        throw new TabulaError('command-failed', `factory reset: cannot run ${argv[0]}: ${asTabulaError(e).message}`, { cause: e });
      }
      if (result.code === 0) {
        logger.notice('factory-reset-accepted', { mode });
        return;
      }
      const how = result.code === undefined ? `was killed by ${result.signal ?? 'a signal'}` : `exited with code ${result.code}`;
      const said = result.stderrTail.trim().split('\n').at(-1) ?? '';
      throw new TabulaError('command-failed', `factory reset: ${argv.join(' ')} ${how}${said ? `: ${said}` : ''}`);
    } catch (e) {
      const err = asTabulaError(e);
      logger.err('factory-reset-failed', { mode, code: err.code, error: err.message });
      throw err;
    } finally {
      this.#running = false;
    }
  }
}
