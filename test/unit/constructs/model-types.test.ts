import { formatBytes, modelTypeOf, parseBytes, runtimeLabels, Runtimes, runtimeServes, typeConstraints } from '../../../lib';

describe('MM_LABELS derivation (upstream golden values)', () => {
  test.each([
    ['mlserver-1.x', Runtimes.mlserver(), false, 'mt:lightgbm,mt:lightgbm:3,mt:sklearn,mt:sklearn:0,mt:xgboost,mt:xgboost:1,pv:grpc-v2,rt:mlserver-1.x'],
    ['mlserver-1.x with REST', Runtimes.mlserver(), true, 'mt:lightgbm,mt:lightgbm:3,mt:sklearn,mt:sklearn:0,mt:xgboost,mt:xgboost:1,pv:grpc-v2,pv:v2,rt:mlserver-1.x'],
    ['ovms-1.x (onnx has no autoSelect)', Runtimes.ovms(), false, 'mt:openvino_ir,mt:openvino_ir:opset1,pv:grpc-v1,rt:ovms-1.x'],
    ['torchserve-0.x (no protocols)', Runtimes.torchserve(), false, 'mt:pytorch-mar,mt:pytorch-mar:0,rt:torchserve-0.x'],
    ['triton-2.x', Runtimes.triton(), false,
      'mt:keras,mt:keras:2,mt:onnx,mt:onnx:1,mt:pytorch,mt:pytorch:1,mt:tensorflow,mt:tensorflow:1,mt:tensorflow:2,mt:tensorrt,mt:tensorrt:7,pv:grpc-v2,rt:triton-2.x'],
  ])('%s', (_name, runtime, rest, expected) => {
    expect(runtimeLabels(runtime, rest).join(',')).toBe(expected);
  });
});

describe('type constraints', () => {
  test('every label and model × protocol pair, plus a _default that matches nothing', () => {
    expect(typeConstraints([Runtimes.ovms()], false)).toEqual({
      '_default': { required: ['_no_runtime'] },
      'mt:openvino_ir': { required: ['mt:openvino_ir'] },
      'mt:openvino_ir:opset1': { required: ['mt:openvino_ir:opset1'] },
      'mt:openvino_ir:opset1|pv:grpc-v1': { required: ['mt:openvino_ir:opset1', 'pv:grpc-v1'] },
      'mt:openvino_ir|pv:grpc-v1': { required: ['mt:openvino_ir', 'pv:grpc-v1'] },
      'rt:ovms-1.x': { required: ['rt:ovms-1.x'] },
    });
    expect(Object.keys(typeConstraints([Runtimes.onnx(), Runtimes.example()], true))).toEqual([...Object.keys(
      typeConstraints([Runtimes.onnx(), Runtimes.example()], true))].sort());
  });

  test('model type strings and which runtime serves a format', () => {
    expect(modelTypeOf({ name: 'onnx' })).toBe('mt:onnx');
    expect(modelTypeOf({ name: 'onnx', version: '1' })).toBe('mt:onnx:1');
    expect(modelTypeOf({ name: 'onnx' }, 'triton-2.x')).toBe('rt:triton-2.x');
    expect(runtimeServes(Runtimes.triton(), { name: 'sklearn' })).toBe(false);
    expect(runtimeServes(Runtimes.triton(), { name: 'sklearn' }, 'triton-2.x')).toBe(true);
    expect(runtimeServes(Runtimes.triton(), { name: 'onnx', version: '2' })).toBe(false);
  });
});

describe('memory quantities', () => {
  test.each([['1Gi', 2 ** 30], ['448Mi', 448 * 2 ** 20], ['1.5G', 1.5e9], ['1024', 1024], ['2x', undefined]])('parseBytes(%s)', (text, bytes) => {
    expect(parseBytes(text)).toBe(bytes);
  });
  test('formatBytes picks the largest exact binary unit', () => {
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1536Mi');
    expect(formatBytes(3 * 2 ** 30)).toBe('3Gi');
    expect(formatBytes(1000)).toBe('1000');
  });
});
