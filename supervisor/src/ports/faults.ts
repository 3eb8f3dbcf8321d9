/**
 * Fault injection, for tests of crash safety: `at(point)` may end the process
 * on the spot, as a power loss would. Points are named `before:<step>`,
 * `mid:<step>`, `after:<step>` (a step's side effects) and `handoff:<stage>`.
 */
export interface Faults {
  at(point: string): void;
}

export const NO_FAULTS: Faults = { at: () => undefined };
