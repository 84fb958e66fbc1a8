/**
 * Reads CRD YAML files, removes every `description` from their schemas and writes them as one multi-document YAML
 * file, so `cdk8s import` generates one module per API group and the project carries no upstream prose. It also
 * writes each served version's `openAPIV3Schema` to one JSON file, which the offline manifest validation test reads.
 *
 * Usage: ts-node scripts/strip-crd-descriptions.ts <out.yaml> <schemas.json> <crd.yaml>...
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';

/** Removes `description` keywords; keys inside `properties` are field names, so a field called "description" stays. */
export function stripDescriptions(node: unknown, inPropertiesMap = false): unknown {
  if (Array.isArray(node)) return node.map((item) => stripDescriptions(item));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (!inPropertiesMap && key === 'description' && typeof value === 'string') continue;
    out[key] = stripDescriptions(value, !inPropertiesMap && key === 'properties');
  }
  return out;
}

interface Crd {
  readonly kind?: string;
  readonly spec: {
    readonly group: string;
    readonly names: { readonly kind: string };
    readonly versions: { readonly name: string; readonly schema?: { readonly openAPIV3Schema?: unknown } }[];
  };
}

/** `group/version/Kind` → the version's openAPIV3Schema, with keys sorted so the file is stable. */
function schemasOf(crds: Crd[]): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  for (const crd of crds) {
    for (const version of crd.spec.versions) {
      const schema = version.schema?.openAPIV3Schema;
      if (schema) schemas[`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`] = schema;
    }
  }
  return sortKeys(schemas) as Record<string, unknown>;
}

function sortKeys(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(sortKeys);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.keys(node).sort().map((key) => [key, sortKeys((node as Record<string, unknown>)[key])]));
}

function main(argv: string[]): void {
  const [output, schemaOutput, ...inputs] = argv;
  if (!output || !schemaOutput || inputs.length === 0) {
    throw new Error('usage: strip-crd-descriptions <out.yaml> <schemas.json> <crd.yaml>...');
  }
  const docs: unknown[] = [];
  for (const input of [...inputs].sort()) {
    for (const doc of parseAllDocuments(readFileSync(input, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${input}: ${doc.errors[0].message}`);
      const value = doc.toJS() as { kind?: string } | null;
      if (value?.kind !== 'CustomResourceDefinition') continue;
      docs.push(stripDescriptions(value));
    }
  }
  writeFileSync(output, docs.map((doc) => `---\n${stringify(doc, { lineWidth: 0 })}`).join(''));
  writeFileSync(schemaOutput, `${JSON.stringify(schemasOf(docs as Crd[]), null, 1)}\n`);
}

if (require.main === module) main(process.argv.slice(2));
