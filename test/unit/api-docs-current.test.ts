import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_DOCS_PATH, apiDocsProblem, ApiSymbol, loadApi, missingDocs } from '../../scripts/gen-api-docs';

/** docs/api.md is generated from lib/'s TSDoc by scripts/gen-api-docs.ts and committed; this fails when it is stale. */

const ROOT = join(__dirname, '..', '..');
// Building the TypeScript program over lib/ takes a few seconds; do it once for both tests.
const SETUP_TIMEOUT_MS = 60_000;

describe('API reference', () => {
  let api: ApiSymbol[];
  beforeAll(() => { api = loadApi(ROOT); }, SETUP_TIMEOUT_MS);

  test('docs/api.md is what `npm run docs` generates', () => {
    const path = join(ROOT, API_DOCS_PATH);
    expect(apiDocsProblem(api, existsSync(path) ? readFileSync(path, 'utf8') : undefined)).toBeUndefined();
  });

  test('every exported symbol, public member and interface property of lib/ has a TSDoc comment', () => {
    expect(missingDocs(api).map((name) => `${name} has no TSDoc comment`)).toEqual([]);
  });

  test('the generated kserve namespace is listed, not documented member by member', () => {
    expect(api.find((symbol) => symbol.name === 'kserve')).toMatchObject({ kind: 'namespace', members: [] });
    expect(api.some((symbol) => symbol.name === 'InferenceService')).toBe(false);
  });
});
