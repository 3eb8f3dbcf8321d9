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
