import { PullError } from '../../../runtime/src/puller/errors';
import { isStorageUri, parseModelKey, parseStorageUri, rewriteModelKey } from '../../../runtime/src/puller/model-key';

describe('parseStorageUri (modelmesh-serving\'s InferenceService storageUri rules)', () => {
  test.each([
    ['s3://models/fraud/model.onnx', 'fraud/model.onnx', { type: 's3', bucket: 'models' }],
    ['s3://models/folder/', 'folder/', { type: 's3', bucket: 'models' }],
    ['gs://bucket/a/b.pt', 'a/b.pt', { type: 'gcs', bucket: 'bucket' }],
    ['pvc://claim/path/to/model', 'path/to/model', { type: 'pvc', name: 'claim' }],
    ['pvc://claim//x', 'x', { type: 'pvc', name: 'claim' }],
    ['https://acct.blob.core.windows.net/container/dir/model.onnx', 'dir/model.onnx', { type: 'azure', account_name: 'acct', container: 'container' }],
    ['http://acct.blob.core.windows.net/c', '', { type: 'azure', account_name: 'acct', container: 'c' }],
    ['https://models.example.com/repo/m.onnx?sig=1', 'repo/m.onnx', { type: 'http', url: 'https://models.example.com?sig=1' }],
    ['http://127.0.0.1:8080/m%20v2/model.bin', 'm v2/model.bin', { type: 'http', url: 'http://127.0.0.1:8080' }],
    ['s3://bucket', '', { type: 's3', bucket: 'bucket' }],
  ])('%s', (uri, path, params) => {
    expect(parseStorageUri(uri)).toEqual({ path, params });
  });

  test('rejects other schemes and malformed URIs', () => {
    expect(() => parseStorageUri('ftp://host/x')).toThrow("unsupported scheme 'ftp'");
    expect(() => parseStorageUri('s3://bucket/%zz')).toThrow(PullError);
  });

  test('isStorageUri tells URIs from paths', () => {
    expect(isStorageUri('s3://b/k')).toBe(true);
    expect(isStorageUri('HTTPS://x/y')).toBe(true);
    expect(isStorageUri('models/s3://x')).toBe(false);
    expect(isStorageUri('a:b/c')).toBe(false);
    expect(isStorageUri('/abs/path')).toBe(false);
  });
});

describe('parseModelKey', () => {
  test('reads storage_key, storage_params, schema_path and the deprecated bucket; keeps every field', () => {
    const key = parseModelKey(JSON.stringify({
      storage_key: 'k',
      storage_params: { type: 's3', bucket: 'b' },
      schema_path: 's.json',
      bucket: 'old',
      model_type: { name: 'onnx', version: '1' },
    }));
    expect(key).toEqual({
      storageKey: 'k',
      storageParams: { type: 's3', bucket: 'b' },
      schemaPath: 's.json',
      bucket: 'old',
      fields: expect.objectContaining({ model_type: { name: 'onnx', version: '1' } }),
    });
  });

  test('an empty key is an empty object', () => {
    expect(parseModelKey('')).toMatchObject({ storageKey: undefined, storageParams: {}, fields: {} });
    expect(parseModelKey('  ')).toMatchObject({ storageParams: {} });
  });

  test.each([
    ['not json', 'not valid JSON'],
    ['[1]', 'must be a JSON object'],
    ['"s"', 'must be a JSON object'],
    ['{"storage_key": 3}', '"storage_key" must be a string'],
    ['{"storage_params": {"bucket": 1}}', 'storage_params "bucket" must be a string'],
    ['{"storage_params": ["a"]}', '"storage_params" must be an object'],
  ])('refuses %s', (text, message) => {
    expect(() => parseModelKey(text)).toThrow(message);
  });
});

describe('rewriteModelKey', () => {
  test('drops storage fields, adds disk_size_bytes, points schema_path at the local file, keeps the rest', () => {
    const key = parseModelKey(JSON.stringify({
      storage_key: 'k',
      storage_params: { a: 'b' },
      bucket: 'x',
      schema_path: 'remote/s.json',
      model_type: { name: 'onnx' },
      extra: 1,
    }));
    expect(JSON.parse(rewriteModelKey(key, 42, '/models/m/s.json'))).toEqual({
      model_type: { name: 'onnx' }, extra: 1, schema_path: '/models/m/s.json', disk_size_bytes: 42,
    });
    expect(JSON.parse(rewriteModelKey(parseModelKey(''), 0))).toEqual({ disk_size_bytes: 0 });
  });
});
