import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripDescriptions } from '../../../scripts/strip-crd-descriptions';

/**
 * lib/imports (the generated KServe classes) and test/fixtures/kserve-crd-schemas.json are committed; this re-runs
 * `scripts/import-crds.sh` into a temporary folder and fails when either is stale. It needs ../shared/reference/crds,
 * which exists in CI but not in a lone clone, so elsewhere it is skipped and says why.
 */

const ROOT = join(__dirname, '..', '..', '..');
const CRDS = join(ROOT, '..', 'shared', 'reference', 'crds');
const haveCrds = existsSync(CRDS) && readdirSync(CRDS).some((file) => file.endsWith('.yaml'));
const testIfCrds = haveCrds ? test : test.skip;
const suffix = haveCrds ? '' : ' (skipped: ../shared/reference/crds is absent in this checkout)';

describe('generated KServe classes', () => {
  testIfCrds(`lib/imports and the CRD schema fixture match scripts/import-crds.sh output${suffix}`, () => {
    const scratch = mkdtempSync(join(tmpdir(), 'mm-crds-'));
    try {
      execFileSync('bash', [join(ROOT, 'scripts', 'import-crds.sh'), join(scratch, 'imports'), join(scratch, 'schemas.json')],
        { cwd: ROOT, stdio: 'pipe' });
      const fresh = readdirSync(join(scratch, 'imports')).sort();
      expect(readdirSync(join(ROOT, 'lib', 'imports')).sort()).toEqual(fresh);
      const stale = fresh.filter((file) => readFileSync(join(scratch, 'imports', file), 'utf8') !== readFileSync(join(ROOT, 'lib', 'imports', file), 'utf8'))
        .map((file) => `lib/imports/${file}`);
      if (readFileSync(join(scratch, 'schemas.json'), 'utf8') !== readFileSync(join(ROOT, 'test', 'fixtures', 'kserve-crd-schemas.json'), 'utf8')) {
        stale.push('test/fixtures/kserve-crd-schemas.json');
      }
      expect(stale.map((file) => `${file} is stale: run \`npm run import-crds\` and commit the result`)).toEqual([]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('the committed generated code and schemas carry no upstream descriptions', () => {
    const schemas = readFileSync(join(ROOT, 'test', 'fixtures', 'kserve-crd-schemas.json'), 'utf8');
    expect(schemas).not.toMatch(/"description":\s*"/);
    expect(readFileSync(join(ROOT, 'lib', 'imports', 'serving.kserve.io.ts'), 'utf8')).toMatch(/export class ServingRuntime extends ApiObject/);
  });

  test('stripDescriptions removes the keyword but keeps a field named "description"', () => {
    const schema = {
      description: 'prose',
      type: 'object',
      properties: {
        description: { type: 'string', description: 'more prose' },
        items: { type: 'array', items: { description: 'x', type: 'string' } },
      },
    };
    expect(stripDescriptions(schema)).toEqual({
      type: 'object',
      properties: { description: { type: 'string' }, items: { type: 'array', items: { type: 'string' } } },
    });
  });
});
