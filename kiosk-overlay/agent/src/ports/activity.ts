/**
 * The visitor's keyboard, mouse and touch activity while the viewer has the
 * screen: the agent passes it on to the server (INPUT) for the idle timeout.
 */
export interface ActivitySource {
  /** Starts watching; `listener` runs at most once per `everyMs` while there is activity. */
  start(listener: () => void, everyMs: number): void;
  stop(): void;
}
