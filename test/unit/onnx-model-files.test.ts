import { absoluteModelPath, modelSizeOf, modelTypeProblem, parseModelKey } from '../../runtime/servers/onnx/model-files';

describe('ONNX model types and keys', () => {
  test.each([
    'onnx', 'ONNX', 'mt:onnx', 'mt:onnx:1', 'mt:onnx|pv:grpc-v2', 'mt:onnx:1|pv:grpc-v2', 'rt:onnx', 'rt:my-onnx-runtime|pv:grpc-v2',
  ])('type %s is served', (type) => {
    expect(modelTypeProblem(type, {})).toBeUndefined();
  });

  test.each(['', 'example', 'mt:sklearn', 'mt:onnxish', 'mt:tensorflow:2|pv:grpc-v2', 'rt:', 'pv:grpc-v2'])('type "%s" is refused', (type) => {
    expect(modelTypeProblem(type, {})).toBe(`model type "${type}" is not served by the ONNX runtime; `
      + 'it serves "onnx", "mt:onnx[:<version>]" and "rt:<runtime>" types');
  });

  test('the model key\'s model_type decides first, as in upstream\'s adapters', () => {
    expect(modelTypeProblem('rt:triton-2.x', parseModelKey('{"model_type":{"name":"onnx","version":"1"}}'))).toBeUndefined();
    expect(modelTypeProblem('mt:onnx', parseModelKey('{"model_type":"sklearn"}')))
      .toBe('the model key names format "sklearn"; the ONNX runtime serves format "onnx"');
  });

  test('the model key gives the format and the puller\'s disk size; anything else in it is ignored', () => {
    expect(parseModelKey('{"storage_key":"s3","model_type":{"name":"onnx"},"disk_size_bytes":1234}')).toEqual({ format: 'onnx', diskSizeBytes: 1234 });
    expect(parseModelKey('')).toEqual({});
    expect(parseModelKey('not json')).toEqual({});
    expect(parseModelKey('[1]')).toEqual({});
    expect(parseModelKey('{"model_type":{"version":"1"},"disk_size_bytes":"12"}')).toEqual({});
  });

  test('sizes are bytes on disk × the multiplier, rounded up, at least 1', () => {
    expect(modelSizeOf(297, 1.25)).toBe(372);
    expect(modelSizeOf(1000, 2.75)).toBe(2750);
    expect(modelSizeOf(0, 1.25)).toBe(1);
  });

  test('relative model paths are taken from ROOT_MODEL_DIR when set', () => {
    expect(absoluteModelPath('/abs/model.onnx', '/models')).toBe('/abs/model.onnx');
    expect(absoluteModelPath('m1/model.onnx', '/models')).toBe('/models/m1/model.onnx');
  });
});
