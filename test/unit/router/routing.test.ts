import { ModelInferRequest } from '../../../proto/gen/grpc_predict_v2';
import { decodeGrpcMessage, encodeGrpcMessage, formatGrpcTimeout, parseGrpcTimeout, readFrame, frameMessage } from '../../../runtime/src/api/grpc-wire';
import { DEFAULT_DATAPLANE_CONFIG, parseDataplaneConfig } from '../../../runtime/src/router/dataplane-config';
import { routingIdFromHeaders, routingIdFromMessage } from '../../../runtime/src/router/routing-id';

describe('routing ids', () => {
  test('headers name a model or a vmodel, -bin variants included', () => {
    expect(routingIdFromHeaders({ 'mm-model-id': 'a' })).toEqual({ kind: 'model', id: 'a' });
    expect(routingIdFromHeaders({ 'mm-vmodel-id': 'v' })).toEqual({ kind: 'vmodel', id: 'v', orModel: false });
    expect(routingIdFromHeaders({ 'mm-model-name': 'n' })).toEqual({ kind: 'vmodel', id: 'n', orModel: true });
    expect(() => routingIdFromHeaders({ 'mm-model-name': 'n', 'mm-vmodel-id': 'v' })).toThrow('send only one of');
    expect(() => routingIdFromHeaders({ 'mm-model-name': '' })).toThrow('mm-model-name must not be empty');
    expect(routingIdFromHeaders({ 'mm-model-id-bin': Buffer.from('grüße').toString('base64') })).toEqual({ kind: 'model', id: 'grüße' });
    expect(routingIdFromHeaders({})).toBeUndefined();
  });

  test('both kinds at once, or an empty id, is INVALID_ARGUMENT', () => {
    expect(() => routingIdFromHeaders({ 'mm-model-id': 'a', 'mm-vmodel-id': 'v' })).toThrow('send only one of mm-model-id, mm-vmodel-id and mm-model-name');
    expect(() => routingIdFromHeaders({ 'mm-model-id': '' })).toThrow('mm-model-id must not be empty');
  });

  test('ModelInfer names its model in field 1, read as a vmodel id that may be a model id', () => {
    const message = ModelInferRequest.encode(ModelInferRequest.fromPartial({ modelName: 'mnist' })).finish();
    const config = DEFAULT_DATAPLANE_CONFIG.rpcConfigs.get('inference.GRPCInferenceService/ModelInfer')!;
    expect(routingIdFromMessage(message, 'inference.GRPCInferenceService/ModelInfer', config)).toEqual({ kind: 'vmodel', id: 'mnist', orModel: true });
    const empty = ModelInferRequest.encode(ModelInferRequest.fromPartial({})).finish();
    expect(() => routingIdFromMessage(empty, 'inference.GRPCInferenceService/ModelInfer', config)).toThrow(/no model named/);
  });
});

describe('dataplane config', () => {
  test('parses upstream\'s format', () => {
    const config = parseDataplaneConfig(JSON.stringify({
      rpcConfigs: { 'tensorflow.serving.PredictionService/Predict': { idExtractionPath: [1, 1], vModelId: true } },
      allowOtherRpcs: false,
    }));
    expect(config.allowOtherRpcs).toBe(false);
    expect(config.rpcConfigs.get('tensorflow.serving.PredictionService/Predict')).toEqual({ idExtractionPath: [1, 1], vModelId: true });
  });

  test('rejects malformed entries, naming them', () => {
    expect(() => parseDataplaneConfig('{"rpcConfigs": {"Predict": {}}}')).toThrow('rpcConfigs key "Predict" must look like "package.Service/Method"');
    expect(() => parseDataplaneConfig('{"rpcConfigs": {"a.B/C": {"idExtractionPath": [0]}}}')).toThrow('idExtractionPath must be a list of positive field numbers');
    expect(() => parseDataplaneConfig('{"allowOtherRpcs": "yes"}')).toThrow('allowOtherRpcs must be true or false');
  });
});

describe('gRPC wire helpers', () => {
  test('frames round-trip and oversized or compressed frames are refused', () => {
    const frame = frameMessage(Buffer.from('hello'));
    const read = readFrame(frame, 100);
    expect(read.kind === 'message' && Buffer.from(read.message).toString()).toBe('hello');
    expect(readFrame(frame.subarray(0, 7), 100)).toEqual({ kind: 'incomplete' });
    expect(readFrame(frame, 3)).toMatchObject({ kind: 'error', code: 8 });
    expect(readFrame(Buffer.from([1, 0, 0, 0, 0]), 100)).toMatchObject({ kind: 'error', code: 12 });
  });

  test('grpc-timeout parses every unit and formats within 8 digits', () => {
    expect([parseGrpcTimeout('2S'), parseGrpcTimeout('150m'), parseGrpcTimeout('1M'), parseGrpcTimeout('500u')]).toEqual([2000, 150, 60000, 0.5]);
    expect(parseGrpcTimeout('soon')).toBeUndefined();
    expect(formatGrpcTimeout(1500.2)).toBe('1501m');
    expect(formatGrpcTimeout(3_600_000_000)).toBe('3600000S');
  });

  test('grpc-message percent-encoding round-trips', () => {
    const text = 'model "grüße" not found: 100%';
    const encoded = encodeGrpcMessage(text);
    expect(encoded).toBe('model "gr%C3%BC%C3%9Fe" not found: 100%25');
    expect(decodeGrpcMessage(encoded)).toBe(text);
  });
});
