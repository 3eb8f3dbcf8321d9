export interface GoldenFacts {
  readonly format: string;
  readonly virtualSize: number;
  readonly backingFile?: string;
}

const FORMATS = ['qcow2', 'raw'];

/** Why a golden image cannot be cloned from, or undefined when it can. */
export function goldenProblem(path: string, facts: GoldenFacts): string | undefined {
  if (!FORMATS.includes(facts.format)) return `golden image ${path} is ${facts.format}, not qcow2 or raw`;
  if (facts.backingFile !== undefined) return `golden image ${path} has a backing file (${facts.backingFile}); flatten it first (qemu-img convert)`;
  if (facts.virtualSize <= 0 || facts.virtualSize % 512 !== 0) return `golden image ${path} is ${facts.virtualSize} bytes, not a whole number of 512-byte sectors`;
  return undefined;
}

/** What `qemu-img check` found. */
export interface CheckFacts {
  readonly corruptions: number;
  /** Leaked clusters waste space and nothing else. */
  readonly leaks: number;
  /** Set when the check could not run to its end. */
  readonly error?: string;
}

/** Why a checked image is refused, or undefined when it is sound. */
export function checkProblem(path: string, facts: CheckFacts): string | undefined {
  if (facts.error !== undefined) return `golden image ${path} fails qemu-img check: ${facts.error}`;
  if (facts.corruptions > 0) return `golden image ${path} is corrupt: qemu-img check found ${facts.corruptions} corruption(s)`;
  return undefined;
}
