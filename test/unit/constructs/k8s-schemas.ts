import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Ajv, { ValidateFunction } from 'ajv';

/**
 * Strict JSON schemas for the built-in Kubernetes 1.28 kinds, derived from `@kubernetes/client-node` 0.20.0, which is
 * generated from the Kubernetes 1.28 OpenAPI document: each model class lists its fields (JSON name and type) in
 * `attributeTypeMap`, and its `.d.ts` marks the required ones. Unknown fields are errors (`additionalProperties: false`),
 * as with `kubectl apply --validate=strict`.
 */

const MODEL_DIR = join(dirname(require.resolve('@kubernetes/client-node/package.json')), 'dist', 'gen', 'model');

type Schema = Record<string, unknown>;
interface Attribute { readonly baseName: string; readonly type: string }

function fileOf(className: string): string {
  return join(MODEL_DIR, className[0].toLowerCase() + className.slice(1));
}

function requiredFields(className: string): string[] {
  const declaration = readFileSync(`${fileOf(className)}.d.ts`, 'utf8');
  return [...declaration.matchAll(/^\s+'([^']+)': /gm)].map((match) => match[1]);
}

class SchemaBuilder {
  private readonly definitions: Record<string, Schema> = {};

  public definitionsFor(className: string): Record<string, Schema> {
    this.define(className);
    return this.definitions;
  }

  private define(className: string): void {
    if (this.definitions[className]) return;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const model = require(fileOf(className))[className] as { getAttributeTypeMap(): Attribute[] } | undefined;
    if (!model) throw new Error(`no Kubernetes 1.28 model named ${className}`);
    const schema: Schema = { type: 'object', additionalProperties: false, properties: {} };
    this.definitions[className] = schema;
    const properties = schema.properties as Record<string, Schema>;
    for (const attribute of model.getAttributeTypeMap()) properties[attribute.baseName] = this.typeSchema(attribute.type);
    const required = requiredFields(className);
    if (required.length > 0) schema.required = required;
  }

  private typeSchema(type: string): Schema {
    const array = /^Array<(.+)>$/.exec(type);
    if (array) return { type: 'array', items: this.typeSchema(array[1]) };
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (map) return { type: 'object', additionalProperties: this.typeSchema(map[1]) };
    switch (type) {
      case 'string': return { type: 'string' };
      case 'number': return { type: 'number' };
      case 'boolean': return { type: 'boolean' };
      case 'Date': return { type: 'string' };
      case 'IntOrString': return { type: ['integer', 'string'] };
      case 'object':
      case 'any': return {};
      default:
        this.define(type);
        return { $ref: `#/definitions/${type}` };
    }
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map<string, ValidateFunction>();

/** The model class of a built-in kind: `apps/v1` `Deployment` → `V1Deployment`. */
function classOf(apiVersion: string, kind: string): string {
  const version = apiVersion.includes('/') ? apiVersion.slice(apiVersion.indexOf('/') + 1) : apiVersion;
  return `${version[0].toUpperCase()}${version.slice(1)}${kind}`;
}

/** Validates a built-in object; returns error lines, empty when valid. Throws for kinds 1.28 does not have. */
export function validateBuiltIn(object: { apiVersion: string; kind: string }): string[] {
  const className = classOf(object.apiVersion, object.kind);
  let validate = compiled.get(className);
  if (!validate) {
    const definitions = new SchemaBuilder().definitionsFor(className);
    validate = ajv.compile({ $ref: `#/definitions/${className}`, definitions });
    compiled.set(className, validate);
  }
  if (validate(object)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message}${error.params && 'additionalProperty' in error.params ? `: ${String(error.params.additionalProperty)}` : ''}`);
}
