/**
 * Model type constraints in upstream's format (`MM_TYPE_CONSTRAINTS_PATH`): a JSON object mapping a model type
 * (or `_default`) to the instance labels it requires and prefers:
 * `{"mt:onnx": {"required": ["mt:onnx"]}, "_default": {"required": ["_no_runtime"]}}`.
 */

export interface TypeConstraint {
  readonly required: readonly string[];
  readonly preferred: readonly string[];
}

export type TypeConstraints = ReadonlyMap<string, TypeConstraint>;

export const NO_CONSTRAINTS: TypeConstraints = new Map();

const DEFAULT_KEY = '_default';

export class TypeConstraintsError extends Error {
  constructor(message: string) {
    super(`type constraints: ${message}`);
    this.name = 'TypeConstraintsError';
  }
}

function labelList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new TypeConstraintsError(`${where} must be a list of label strings`);
  }
  return value as string[];
}

export function parseTypeConstraints(json: string): TypeConstraints {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new TypeConstraintsError(`not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new TypeConstraintsError('must be a JSON object keyed by model type');
  const result = new Map<string, TypeConstraint>();
  for (const [type, spec] of Object.entries(doc)) {
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new TypeConstraintsError(`"${type}" must be an object with "required" and/or "preferred"`);
    const s = spec as Record<string, unknown>;
    result.set(type, { required: labelList(s.required, `"${type}".required`), preferred: labelList(s.preferred, `"${type}".preferred`) });
  }
  return result;
}

/** The constraint that applies to `modelType`: its own entry, else `_default`, else none. */
export function constraintFor(constraints: TypeConstraints, modelType: string): TypeConstraint | undefined {
  return constraints.get(modelType) ?? constraints.get(DEFAULT_KEY);
}

export function hasAllLabels(labels: readonly string[], wanted: readonly string[]): boolean {
  return wanted.every((label) => labels.includes(label));
}
