/** How a program ended. */
export interface CommandResult {
  /** The exit code; undefined when a signal ended it. */
  readonly code?: number;
  readonly signal?: string;
  /** The end of what it wrote to stderr, for the error message. */
  readonly stderrTail: string;
}

/** Runs a program to its end. Throws only when it cannot be started at all. */
export type RunCommand = (argv: readonly string[], env?: Readonly<Record<string, string>>) => Promise<CommandResult>;
