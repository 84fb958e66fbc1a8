import { join } from 'node:path';
import Ajv, { ValidateFunction } from 'ajv';

/**
 * Validation of KServe objects against the `openAPIV3Schema` of their CRDs. The schemas are the project's copy in
 * `test/fixtures/kserve-crd-schemas.json`, written by `scripts/import-crds.sh` with the generated classes (descriptions
 * stripped). Unknown fields are errors unless the schema preserves them (`x-kubernetes-preserve-unknown-fields`).
 */

// eslint-disable-next-line @typescript-eslint/no-require-imports
const SCHEMAS = require(join(__dirname, '..', '..', 'fixtures', 'kserve-crd-schemas.json')) as Record<string, Record<string, unknown>>;

function strict(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strict);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = key === 'properties'
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([name, schema]) => [name, strict(schema)]))
      : strict(value);
  }
  if (out.properties && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
const compiled = new Map<string, ValidateFunction>();

/** Whether the fixture has a schema for this apiVersion and kind. */
export function hasCrdSchema(apiVersion: string, kind: string): boolean {
  return `${apiVersion}/${kind}` in SCHEMAS;
}

/** Validates a KServe object; returns error lines, empty when valid. */
export function validateCrd(object: { apiVersion: string; kind: string }): string[] {
  const key = `${object.apiVersion}/${object.kind}`;
  let validate = compiled.get(key);
  if (!validate) {
    if (!SCHEMAS[key]) throw new Error(`no CRD schema for ${key}`);
    validate = ajv.compile(strict(SCHEMAS[key]) as object);
    compiled.set(key, validate);
  }
  if (validate(object)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message}${error.params && 'additionalProperty' in error.params ? `: ${String(error.params.additionalProperty)}` : ''}`);
}
