import { status } from '@grpc/grpc-js';
import { Tensor } from 'onnxruntime-node';
import {
  InferTensorContents, ModelInferRequest, ModelInferRequest_InferInputTensor,
} from '../../proto/gen/grpc_predict_v2';
import { datatypeNamed, DATATYPES } from '../../runtime/servers/onnx/datatypes';
import { InferenceModel, inferResponse, prepareInference } from '../../runtime/servers/onnx/infer';
import { inputTensor, metadataShape, outputTensor, specsOf, TensorSpec } from '../../runtime/servers/onnx/tensors';
import { encodeRawBytes } from '../../runtime/servers/shared/bytes-tensor';
import { MeshError } from '../../runtime/src/errors';

function spec(name: string, datatype: string, shape: (number | string)[]): TensorSpec {
  const d = datatypeNamed(datatype)!;
  return { name, datatype: d, ortType: d.ort, shape };
}

function input(name: string, datatype: string, shape: number[], contents?: Partial<InferTensorContents>): ModelInferRequest_InferInputTensor {
  return ModelInferRequest_InferInputTensor.fromPartial({ name, datatype, shape, ...(contents ? { contents } : {}) });
}

function refusal(run: () => unknown): MeshError {
  try {
    run();
  } catch (err) {
    if (err instanceof MeshError) return err;
    throw err;
  }
  throw new Error('expected an INVALID_ARGUMENT');
}

describe('KServe v2 ↔ onnxruntime datatypes', () => {
  test('every datatype maps to a distinct onnxruntime type, and back', () => {
    expect(DATATYPES.map((d) => d.name)).toEqual(['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES']);
    expect(new Set(DATATYPES.map((d) => d.ort)).size).toBe(DATATYPES.length);
  });

  test('session metadata becomes specs; dimensions of any size are -1 in KServe metadata', () => {
    const specs = specsOf([
      { name: 'x', isTensor: true, type: 'float32', shape: ['batch', 4] },
      { name: 'q', isTensor: true, type: 'int4', shape: [2] },
      { name: 'm', isTensor: false },
    ]);
    expect(specs.map((s) => [s.name, s.datatype?.name, s.ortType])).toEqual([['x', 'FP32', 'float32'], ['q', undefined, 'int4'], ['m', undefined, 'non-tensor value']]);
    expect(metadataShape(specs[0])).toEqual([-1, 4]);
    expect(metadataShape({ name: 'z', ortType: 'float32', shape: [-1, 0, 'n'] })).toEqual([-1, 0, -1]);
  });
});

describe('request inputs → onnxruntime tensors', () => {
  const x = spec('x', 'FP32', ['batch', 2]);

  test.each([
    ['FP32', { fp32Contents: [1.5, -2] }, 'float32', [1.5, -2]],
    ['FP64', { fp64Contents: [0.1, 1e300] }, 'float64', [0.1, 1e300]],
    ['INT8', { intContents: [-128, 127] }, 'int8', [-128, 127]],
    ['INT16', { intContents: [-32768, 3] }, 'int16', [-32768, 3]],
    ['INT32', { intContents: [-1, 2147483647] }, 'int32', [-1, 2147483647]],
    ['INT64', { int64Contents: [-9007199254740991, 5] }, 'int64', [-9007199254740991n, 5n]],
    ['UINT8', { uintContents: [0, 255] }, 'uint8', [0, 255]],
    ['UINT16', { uintContents: [1, 65535] }, 'uint16', [1, 65535]],
    ['UINT32', { uintContents: [1, 4294967295] }, 'uint32', [1, 4294967295]],
    ['UINT64', { uint64Contents: [0, 9007199254740991] }, 'uint64', [0n, 9007199254740991n]],
    ['BOOL', { boolContents: [true, false] }, 'bool', [1, 0]],
    ['BYTES', { bytesContents: [Buffer.from('hé'), Buffer.from('')] }, 'string', ['hé', '']],
  ] as [string, Partial<InferTensorContents>, string, unknown[]][])('typed %s becomes the matching onnxruntime tensor', (datatype, contents, ort, values) => {
    const tensor = inputTensor('m', input('t', datatype, [2], contents), undefined, spec('t', datatype, [-1]));
    expect(tensor.type).toBe(ort);
    expect(tensor.dims).toEqual([2]);
    expect(Array.from(tensor.data as ArrayLike<unknown>)).toEqual(values);
  });

  test.each([
    ['FP32', Buffer.from(new Float32Array([1.5, -2]).buffer), [1.5, -2]],
    ['INT64', Buffer.from(new BigInt64Array([-(2n ** 62n), 7n]).buffer), [-(2n ** 62n), 7n]],
    ['UINT64', Buffer.from(new BigUint64Array([2n ** 64n - 1n, 0n]).buffer), [2n ** 64n - 1n, 0n]],
    ['FP16', Buffer.from(new Uint16Array([0x3c00, 0xc000]).buffer), [0x3c00, 0xc000]],
    ['BOOL', Buffer.from([0, 2]), [0, 1]],
    ['BYTES', encodeRawBytes([Buffer.from('a'), Buffer.from('bc')]), ['a', 'bc']],
  ] as [string, Buffer, unknown[]][])('raw %s is read little-endian, from any byte offset', (datatype, raw, values) => {
    // A slice at an odd offset, as protobuf decoding hands raw contents over.
    const misaligned = Buffer.concat([Buffer.from([9]), raw]).subarray(1);
    const tensor = inputTensor('m', input('t', datatype, [2]), misaligned, spec('t', datatype, [2]));
    expect(Array.from(tensor.data as ArrayLike<unknown>)).toEqual(values);
  });

  test.each([
    ['the wrong datatype', input('x', 'INT32', [1, 2], { intContents: [1, 2] }), /^input tensor "x" has datatype INT32; model m expects FP32$/],
    ['an unknown datatype', input('x', 'FLOAT', [1, 2], { fp32Contents: [1, 2] }), /datatype FLOAT \(not a KServe v2 datatype: use one of BOOL, .*BYTES\); model m expects FP32/],
    ['the wrong rank', input('x', 'FP32', [2], { fp32Contents: [1, 2] }), /^input tensor "x" has shape \[2\]; model m expects \[-1, 2\] \(-1: any size\)$/],
    ['a fixed dimension of another size', input('x', 'FP32', [1, 3], { fp32Contents: [1, 2, 3] }), /has shape \[1, 3\]; model m expects \[-1, 2\]/],
    ['a negative dimension', input('x', 'FP32', [-1, 2], { fp32Contents: [1, 2] }), /has shape \[-1, 2\]: dimensions must be whole numbers, 0 or more/],
    ['too few values for the shape', input('x', 'FP32', [2, 2], { fp32Contents: [1, 2] }), /^input tensor "x" holds 2 values in fp32_contents; its shape \[2, 2\] needs 4$/],
    ['values in another type\'s list', input('x', 'FP32', [1, 2], { fp64Contents: [1, 2] }), /^input tensor "x" is FP32, whose values belong in fp32_contents; got 2 values in fp64_contents$/],
  ] as [string, ModelInferRequest_InferInputTensor, RegExp][])('%s is refused', (_label, bad, message) => {
    const err = refusal(() => inputTensor('m', bad, undefined, x));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(message);
  });

  test('values outside a narrow integer type are refused, not wrapped', () => {
    expect(refusal(() => inputTensor('m', input('b', 'UINT8', [2], { uintContents: [1, 256] }), undefined, spec('b', 'UINT8', [2]))).message)
      .toBe('input tensor "b": element 1 is 256, outside UINT8\'s range 0..255');
    expect(refusal(() => inputTensor('m', input('i', 'INT16', [1], { intContents: [-40000] }), undefined, spec('i', 'INT16', [1]))).message)
      .toBe('input tensor "i": element 0 is -40000, outside INT16\'s range -32768..32767');
  });

  test('raw contents of the wrong length, and typed FP16, are refused with what would be right', () => {
    expect(refusal(() => inputTensor('m', input('x', 'FP32', [1, 2]), Buffer.alloc(7), x)).message)
      .toBe('input tensor "x": raw contents hold 7 bytes; shape [1, 2] of FP32 needs 8 (2 × 4)');
    expect(refusal(() => inputTensor('m', input('s', 'BYTES', [2]), encodeRawBytes([Buffer.from('a')]), spec('s', 'BYTES', [-1]))).message)
      .toBe('input tensor "s": raw contents hold 1 BYTES elements; its shape [2] needs 2');
    expect(refusal(() => inputTensor('m', input('h', 'FP16', [1], { fp32Contents: [1] }), undefined, spec('h', 'FP16', [1]))).message)
      .toMatch(/FP16, which KServe v2 carries only in raw_input_contents/);
  });

  test('an input of a type KServe v2 cannot carry is refused naming onnxruntime\'s type', () => {
    expect(refusal(() => inputTensor('m', input('q', 'INT8', [1], { intContents: [1] }), undefined, { name: 'q', ortType: 'int4', shape: [1] })).message)
      .toBe('input tensor "q" of model m has onnxruntime type int4, which KServe v2 cannot carry');
  });
});

describe('onnxruntime results → response outputs', () => {
  test('typed: each type fills its contents list', () => {
    expect(outputTensor('y', new Tensor('float32', [1.5, 2], [1, 2]), false).tensor)
      .toMatchObject({ name: 'y', datatype: 'FP32', shape: [1, 2], contents: { fp32Contents: [1.5, 2] } });
    expect(outputTensor('b', new Tensor('bool', [true, false], [2]), false).tensor.contents?.boolContents).toEqual([true, false]);
    expect(outputTensor('i', new Tensor('int64', new BigInt64Array([-3n]), [1]), false).tensor.contents?.int64Contents).toEqual([-3]);
    expect(outputTensor('u', new Tensor('uint16', new Uint16Array([65535]), [1]), false).tensor.contents?.uintContents).toEqual([65535]);
    expect(outputTensor('s', new Tensor('string', ['hé'], [1]), false).tensor.contents?.bytesContents).toEqual([Buffer.from('hé')]);
  });

  test('raw: little-endian bytes (length-prefixed for BYTES), no typed contents', () => {
    const converted = outputTensor('y', new Tensor('float32', [1.5, 2], [2]), true);
    expect(converted.tensor.contents).toBeUndefined();
    expect(converted.raw).toEqual(Buffer.from(new Float32Array([1.5, 2]).buffer));
    expect(outputTensor('s', new Tensor('string', ['a', 'bc'], [2]), true).raw).toEqual(encodeRawBytes([Buffer.from('a'), Buffer.from('bc')]));
  });

  test('values typed contents cannot carry exactly ask for the raw form', () => {
    expect(refusal(() => outputTensor('big', new Tensor('int64', new BigInt64Array([2n ** 60n]), [1]), false)).message)
      .toMatch(/output tensor "big": element 0 \(1152921504606846976\) does not fit typed contents exactly; send the inputs in raw_input_contents/);
    expect(refusal(() => outputTensor('h', new Tensor('float16', new Uint16Array([0x3c00]), [1]), false)).message)
      .toMatch(/output tensor "h" is FP16, which KServe v2 carries only in raw contents/);
  });
});

describe('a ModelInfer request against the model\'s declaration', () => {
  const model: InferenceModel = {
    id: 'm',
    inputs: [spec('a', 'FP32', [-1]), spec('b', 'INT64', [1])],
    outputs: [spec('y', 'FP32', [-1]), spec('z', 'BYTES', [-1]), { name: 'seq', ortType: 'non-tensor value', shape: [] }],
    session: { run: () => Promise.reject(new Error('not used')) },
  };
  const a = input('a', 'FP32', [2], { fp32Contents: [1, 2] });
  const b = input('b', 'INT64', [1], { int64Contents: [3] });
  const request = (partial: Parameters<typeof ModelInferRequest.fromPartial>[0]) => ModelInferRequest.fromPartial(partial);

  test('feeds every input; fetches the requested outputs in order, else all KServe can carry', () => {
    const all = prepareInference(model, request({ inputs: [b, a] }));
    expect(Object.keys(all.feeds).sort()).toEqual(['a', 'b']);
    expect(all.fetches).toEqual(['y', 'z']);
    expect(all.raw).toBe(false);
    expect(prepareInference(model, request({ inputs: [a, b], outputs: [{ name: 'z' }, { name: 'y' }, { name: 'z' }] })).fetches).toEqual(['z', 'y']);
  });

  test.each([
    ['a missing input', { inputs: [a] }, /^input tensor "b" is missing; model m takes "b" \(INT64 \[1\]\)$/],
    ['an unknown input', { inputs: [a, b, input('c', 'FP32', [1])] }, /^input tensor "c" does not exist in model m; it takes "a" \(FP32 \[-1\]\), "b" \(INT64 \[1\]\)$/],
    ['a repeated input', { inputs: [a, a, b] }, /^input tensor "a" appears more than once$/],
    ['raw contents for some inputs only', { inputs: [a, b], rawInputContents: [Buffer.alloc(8)] }, /^raw_input_contents has 1 entries for 2 input tensors/],
    ['typed and raw data at once', { inputs: [a, b], rawInputContents: [Buffer.alloc(8), Buffer.alloc(8)] }, /^input tensor "a": data is in both contents and raw_input_contents/],
    ['an unknown requested output', { inputs: [a, b], outputs: [{ name: 'w' }] }, /^requested output tensor "w" does not exist in model m; it has "y" \(FP32 \[-1\]\), "z" \(BYTES \[-1\]\), "seq"/],
  ] as [string, Parameters<typeof ModelInferRequest.fromPartial>[0], RegExp][])('%s is refused', (_label, partial, message) => {
    const err = refusal(() => prepareInference(model, request(partial)));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(message);
  });

  test('the response answers in the request\'s form', () => {
    const rawRequest = request({
      id: 'r1',
      inputs: [{ ...a, contents: undefined }, { ...b, contents: undefined }],
      rawInputContents: [Buffer.from(new Float32Array([1, 2]).buffer), Buffer.from(new BigInt64Array([3n]).buffer)],
    });
    const prepared = prepareInference(model, rawRequest);
    expect(prepared.raw).toBe(true);
    const response = inferResponse(model, rawRequest, prepared, { y: new Tensor('float32', [4, 5], [2]), z: new Tensor('string', ['ok'], [1]) });
    expect(response).toMatchObject({ modelName: 'm', id: 'r1', outputs: [{ name: 'y', datatype: 'FP32', shape: [2] }, { name: 'z', datatype: 'BYTES', shape: [1] }] });
    expect(response.rawOutputContents).toEqual([Buffer.from(new Float32Array([4, 5]).buffer), encodeRawBytes([Buffer.from('ok')])]);
  });
});
