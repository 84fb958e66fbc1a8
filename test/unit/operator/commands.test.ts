import { parseModelFile, renderCluster } from '../../../runtime/src/operator/commands';
import { formatTable } from '../../../runtime/src/operator/table';

describe('parseModelFile', () => {
  test('reads a JSON array or JSON lines', () => {
    const entry = { modelId: 'a', type: 'onnx', path: 'p/a.onnx' };
    expect(parseModelFile(JSON.stringify([entry]), 'f')).toEqual([{ ...entry, key: undefined }]);
    expect(parseModelFile(`${JSON.stringify(entry)}\n\n${JSON.stringify({ ...entry, modelId: 'b', key: '{}' })}\n`, 'f'))
      .toEqual([{ ...entry, key: undefined }, { ...entry, modelId: 'b', key: '{}' }]);
  });

  test.each([
    ['[1]', 'f: entry 1: must be an object'],
    ['[{"modelId":"a","type":"t"}]', 'f: entry 1: "path" must be a non-empty string'],
    ['[{"modelId":"a","type":"t","path":"p","key":3}]', 'f: entry 1: "key" must be a string'],
    ['{"modelId": ', 'f: not a JSON array or JSON lines'],
  ])('%s is refused before anything is registered', (text, message) => {
    expect(() => parseModelFile(text, 'f')).toThrow(message);
  });
});

test('formatTable pads columns and right-aligns the numeric ones', () => {
  expect(formatTable(['name', 'n'], [['a', '1'], ['bbb', '22']], [1])).toBe('name   n\n----  --\na      1\nbbb   22');
});

test('renderCluster shows use as bytes and percent, leader and state', () => {
  const text = renderCluster({
    serviceName: 'mm',
    answeredBy: 'i-1',
    models: 3,
    vmodels: 0,
    modelsLoaded: 2,
    modelsWithFailure: 0,
    instances: [{
      instanceId: 'i-1',
      address: '10.0.0.1:8033',
      capacityBytes: 2 * 1024 ** 3,
      usedBytes: 512 * 1024 ** 2,
      copies: 2,
      loadsInFlight: 1,
      requestsPerMinute: 120,
      requestsInFlight: 3,
      shuttingDown: true,
      leader: true,
      version: '0.1.0',
      zone: '',
      startTimeMs: 1_000,
      lruTimeMs: 0,
      labels: [],
    }],
  }, 1_000 + 3 * 3600 * 1000);
  expect(text.split('\n')[4]).toMatch(/^i-1\s+10\.0\.0\.1:8033\s+yes\s+leaving\s+2\.0 GiB\s+512 MiB \(25%\)\s+2\s+1\s+120\s+3\s+0\.1\.0\s+3h\s+-$/);
});
