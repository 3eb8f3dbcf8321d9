/**
 * The last keyboard or mouse input each session's station reported. Kept in
 * memory only: after a restart every session starts a fresh idle period from
 * the restart, which errs towards the visitor, never towards a cut session.
 */
export class SessionActivity {
  readonly #last = new Map<string, number>();
  readonly #since: number;

  /** `since`: when this supervisor started; no session has been idle for longer than that as far as it knows. */
  constructor(since: number) {
    this.#since = since;
  }

  report(session: string, at: number): void {
    if (at > (this.#last.get(session) ?? 0)) this.#last.set(session, at);
  }

  lastInput(session: string): number {
    return this.#last.get(session) ?? this.#since;
  }

  /** Forgets sessions that are over. */
  keepOnly(live: ReadonlySet<string>): void {
    for (const id of this.#last.keys()) if (!live.has(id)) this.#last.delete(id);
  }
}
