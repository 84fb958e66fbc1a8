import { catalogModelId, catalogModelKey, parseCatalog } from '../../runtime/src/lifecycle/catalog';

const entry = { name: 'fraud', modelType: 'mt:sklearn', modelFormat: { name: 'sklearn', version: '1' }, path: 'fraud/model.joblib', storageKey: 'main', storageParams: { bucket: 'models' } };

describe('model catalog', () => {
  test('valid entries are kept and each invalid one is reported with its index, name and problem', () => {
    const parsed = parseCatalog(JSON.stringify({ version: 1, models: [entry, { ...entry, name: 'bad name' }, { ...entry, name: 'x', storageParams: { a: 1 } }, entry] }));
    expect(parsed.models).toEqual([entry]);
    expect(parsed.problems).toEqual([
      'catalog entry 1 (bad name): name must be 1-253 letters, digits, ".", "_" or "-"; skipped',
      'catalog entry 2 (x): storageParams must map names to strings; skipped',
      'catalog entry 3 (fraud): name is declared twice; the first entry wins; skipped',
    ]);
  });

  test('a malformed or unknown-version document applies nothing', () => {
    expect(parseCatalog('{').models).toEqual([]);
    expect(parseCatalog('{"version": 2, "models": []}').problems).toEqual(['catalog version 2 is not supported (expected 1)']);
  });

  test('the concrete model id changes with what the entry loads, not with its owner', () => {
    expect(catalogModelId(entry)).toMatch(/^fraud__catalog-[0-9a-f]{10}$/);
    expect(catalogModelId({ ...entry, owner: 'someone' })).toBe(catalogModelId(entry));
    expect(catalogModelId({ ...entry, path: 'fraud/v2.joblib' })).not.toBe(catalogModelId(entry));
  });

  test('the model key has upstream\'s field names', () => {
    expect(JSON.parse(catalogModelKey(entry))).toEqual({ storage_key: 'main', storage_params: { bucket: 'models' }, model_type: { name: 'sklearn', version: '1' } });
  });
});
