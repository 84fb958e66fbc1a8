import { join } from 'node:path';
import Ajv, { ValidateFunction } from 'ajv';

/**
 * Validation of kinds that have neither a Kubernetes 1.28 model nor a CRD schema in the project, against strict
 * schemas written by hand in `test/fixtures/`. `cert-manager-certificate.schema.json` is hand-written from
 * cert-manager's v1 API reference (the `cert-manager.io/v1` Certificate) and covers the fields the constructs emit;
 * any other field is an error.
 */

const FIXTURES = join(__dirname, '..', '..', 'fixtures');
const FILES: Record<string, string> = {
  'cert-manager.io/v1/Certificate': 'cert-manager-certificate.schema.json',
};

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map<string, ValidateFunction>();

/** Whether a hand-written schema covers this apiVersion and kind. */
export function hasHandWrittenSchema(apiVersion: string, kind: string): boolean {
  return `${apiVersion}/${kind}` in FILES;
}

/** Validates an object against its hand-written schema; returns error lines, empty when valid. */
export function validateHandWritten(object: { apiVersion: string; kind: string }): string[] {
  const key = `${object.apiVersion}/${object.kind}`;
  let validate = compiled.get(key);
  if (!validate) {
    if (!FILES[key]) throw new Error(`no hand-written schema for ${key}`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    validate = ajv.compile(require(join(FIXTURES, FILES[key])) as object);
    compiled.set(key, validate);
  }
  if (validate(object)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message}${error.params && 'additionalProperty' in error.params ? `: ${String(error.params.additionalProperty)}` : ''}`);
}
