import { status } from '@grpc/grpc-js';
import { InferTensorContents, ModelInferRequest, ModelInferResponse } from '../../../proto/gen/grpc_predict_v2';
import { MeshError } from '../../../runtime/src/errors';
import { decodeInferResponse } from '../../../runtime/src/rest/inference-client';
import { decodeRaw, encodeRaw } from '../../../runtime/src/rest/raw';
import { inferRequestFromJson, inferResponseToJson, tensorDataFromJson } from '../../../runtime/src/rest/tensors';

const target = { model: 'm', version: '' };

/** Converts a request with one input tensor and returns that tensor's contents. */
function contentsOf(datatype: string, data: unknown[], shape = [data.length]): InferTensorContents | undefined {
  return inferRequestFromJson({ inputs: [{ name: 'x', datatype, shape, data }] }, target).inputs[0].contents;
}

function requestError(body: unknown): MeshError {
  try {
    inferRequestFromJson(body, target);
  } catch (err) {
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe(status.INVALID_ARGUMENT);
    return err as MeshError;
  }
  throw new Error('expected the conversion to fail');
}

const oneInput = (datatype: string, data: unknown[], shape: unknown = [data.length]) => ({ inputs: [{ name: 'x', datatype, shape, data }] });

const empty: InferTensorContents = InferTensorContents.fromPartial({});

describe('JSON request → ModelInferRequest', () => {
  test.each([
    ['BOOL', [true, false], { boolContents: [true, false] }],
    ['UINT8', [0, 255], { uintContents: [0, 255] }],
    ['UINT16', [65535], { uintContents: [65535] }],
    ['UINT32', [4294967295], { uintContents: [4294967295] }],
    ['UINT64', [Number.MAX_SAFE_INTEGER], { uint64Contents: [Number.MAX_SAFE_INTEGER] }],
    ['INT8', [-128, 127], { intContents: [-128, 127] }],
    ['INT16', [-32768], { intContents: [-32768] }],
    ['INT32', [-2147483648, 2147483647], { intContents: [-2147483648, 2147483647] }],
    ['INT64', [Number.MIN_SAFE_INTEGER, 7], { int64Contents: [Number.MIN_SAFE_INTEGER, 7] }],
    ['FP32', [1.5, 'NaN', 'Infinity', '-Infinity'], { fp32Contents: [1.5, NaN, Infinity, -Infinity] }],
    ['FP64', [0.1, -1e300], { fp64Contents: [0.1, -1e300] }],
    ['BYTES', ['héllo', { b64: '/wA=' }], { bytesContents: [Buffer.from('héllo'), Buffer.from([0xff, 0x00])] }],
  ])('%s data goes into its contents list', (datatype, data, expected) => {
    expect(contentsOf(datatype, data)).toEqual({ ...empty, ...expected });
  });

  test('model name, version, id, parameters and requested outputs are carried', () => {
    const request = inferRequestFromJson({
      id: 'req-1',
      parameters: { flag: true, count: 3, mode: 'fast' },
      inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [1], parameters: { content_type: 'np' } }],
      outputs: [{ name: 'y', parameters: { binary_data: false } }],
    }, { model: 'fraud', version: '2' });
    expect(request).toMatchObject({
      modelName: 'fraud',
      modelVersion: '2',
      id: 'req-1',
      parameters: { flag: { boolParam: true }, count: { int64Param: 3 }, mode: { stringParam: 'fast' } },
      outputs: [{ name: 'y', parameters: { binary_data: { boolParam: false } } }],
      rawInputContents: [],
    });
    expect(request.inputs[0]).toMatchObject({ name: 'x', datatype: 'INT32', shape: [1], parameters: { content_type: { stringParam: 'np' } } });
  });

  test('the converted request survives protobuf encoding unchanged', () => {
    const request = inferRequestFromJson({
      inputs: [
        { name: 'a', datatype: 'INT64', shape: [2], data: [Number.MAX_SAFE_INTEGER, -5] },
        { name: 'b', datatype: 'BYTES', shape: [1], data: ['z'] },
      ],
    }, target);
    expect(ModelInferRequest.decode(ModelInferRequest.encode(request).finish())).toEqual(request);
  });

  test('nested data is flattened in row-major order', () => {
    expect(contentsOf('INT32', [[1, 2, 3], [4, 5, 6]], [2, 3])?.intContents).toEqual([1, 2, 3, 4, 5, 6]);
    expect(contentsOf('INT32', [[[1], [2]], [[3], [4]]], [2, 2, 1])?.intContents).toEqual([1, 2, 3, 4]);
    expect(contentsOf('BYTES', [['a', { b64: 'Yg==' }]], [1, 2])?.bytesContents).toEqual([Buffer.from('a'), Buffer.from('b')]);
  });

  test('a scalar has shape [] and one element; a zero dimension holds none', () => {
    expect(contentsOf('FP64', [2.5], [])?.fp64Contents).toEqual([2.5]);
    expect(contentsOf('FP64', [], [0, 3])?.fp64Contents).toEqual([]);
  });

  test('deep nesting does not exhaust the stack', () => {
    let data: unknown[] = [1];
    for (let i = 0; i < 100_000; i++) data = [data];
    expect(tensorDataFromJson('INT32', [1], data, 'deep')).toEqual([1]);
  });

  test('an element count that does not match the shape is refused, naming the tensor and both counts', () => {
    expect(requestError({ inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 3], data: [[1, 2], [3, 4]] }] }).message)
      .toBe('input tensor "pixels" has shape [2, 3] (6 elements) but its data holds 4');
    expect(requestError(oneInput('FP32', [1, 2, 3], [2])).message).toBe('input tensor "x" has shape [2] (2 elements) but its data holds 3');
  });

  test.each([
    ['BOOL', 1, 'input tensor "x" element 0 is 1; BOOL elements are true or false'],
    ['INT8', 128, 'input tensor "x" element 0 is 128, outside the INT8 range -128..127'],
    ['UINT8', -1, 'input tensor "x" element 0 is -1, outside the UINT8 range 0..255'],
    ['UINT32', 4294967296, 'outside the UINT32 range'],
    ['INT32', 1.5, 'input tensor "x" element 0 is 1.5; INT32 elements are integers'],
    ['INT16', '3', 'input tensor "x" element 0 is "3"; INT16 elements are integers'],
    ['INT64', 2 ** 53, 'input tensor "x" element 0 is 9007199254740992, beyond ±(2^53 - 1): a JSON number cannot carry such a INT64 value exactly'],
    ['INT64', -(2 ** 60), 'refused rather than rounded'],
    ['UINT64', 18446744073709551615, 'beyond ±(2^53 - 1)'],
    ['UINT64', -1, 'outside the UINT64 range'],
    ['FP32', 1e39, 'input tensor "x" element 0 is 1e+39, beyond the largest FP32 value'],
    ['FP32', 'nan', 'FP32 elements are numbers (or "NaN", "Infinity", "-Infinity")'],
    ['FP64', null, 'input tensor "x" element 0 is null; FP64 elements are numbers'],
    ['FP16', 70000, 'input tensor "x" element 0 is 70000, beyond the largest FP16 value (65504)'],
    ['BYTES', 5, 'BYTES elements are strings (UTF-8) or {"b64": "<base64>"} objects'],
    ['BYTES', { b64: 'not base64!' }, 'input tensor "x" element 0: "b64" holds "not base64!", which is not valid base64'],
    ['BYTES', { b64: 'YQ==', extra: 1 }, 'input tensor "x" element 0 is an object; BYTES elements are strings'],
  ])('%s element %p is refused', (datatype, value, message) => {
    expect(requestError(oneInput(datatype, [value])).message).toContain(message);
  });

  test('an error names the element by its flat index', () => {
    expect(requestError(oneInput('INT8', [[1, 2], [3, 999]], [2, 2])).message).toContain('element 3 is 999');
  });

  test('FP16 inputs travel as raw contents, and so then do all the inputs', () => {
    const request = inferRequestFromJson({
      inputs: [
        { name: 'h', datatype: 'FP16', shape: [2], data: [1, -0.5] },
        { name: 's', datatype: 'BYTES', shape: [1], data: ['x'] },
      ],
    }, target);
    expect(request.inputs.map((t) => t.contents)).toEqual([undefined, undefined]);
    expect(request.rawInputContents).toHaveLength(2);
    expect(decodeRaw('FP16', request.rawInputContents[0], 'h')).toEqual([1, -0.5]);
    expect(decodeRaw('BYTES', request.rawInputContents[1], 's')).toEqual([Buffer.from('x')]);
  });

  test('rawInputContents sends every input raw', () => {
    const request = inferRequestFromJson(oneInput('INT16', [1, -1]), target, { rawInputContents: true });
    expect(request.inputs[0].contents).toBeUndefined();
    expect([...request.rawInputContents[0]]).toEqual([1, 0, 0xff, 0xff]);
  });

  test.each([
    [[1, 2], 'the request body must be a JSON object with an "inputs" array'],
    [{}, 'the request must have an "inputs" array of tensors'],
    [{ inputs: [], id: 5 }, '"id" must be a string'],
    [{ inputs: [], outputs: {} }, '"outputs" must be an array'],
    [{ inputs: [7] }, 'inputs[0] must be an object with name, shape, datatype and data'],
    [{ inputs: [{ shape: [1], datatype: 'INT8', data: [1] }] }, 'inputs[0] needs a non-empty string "name"'],
    [oneInput('FLOAT', [1]), 'input tensor "x" has datatype "FLOAT"; KServe v2 datatypes are BOOL, UINT8'],
    [oneInput('INT8', [1], [-1]), 'input tensor "x" needs "shape": an array of non-negative integers, got [-1]'],
    [oneInput('INT8', [1], [1.5]), 'needs "shape"'],
    [oneInput('INT8', [1], '1'), 'needs "shape"'],
    [{ inputs: [{ name: 'x', datatype: 'INT8', shape: [1], data: 1 }] }, 'input tensor "x" needs "data": an array of elements'],
    [{ inputs: [{ name: 'x', datatype: 'INT8', shape: [1], data: [1] }, { name: 'x', datatype: 'INT8', shape: [1], data: [1] }] },
      'input tensor "x" appears more than once'],
    [{ inputs: [], outputs: [{}] }, 'outputs[0] must be an object with a non-empty string "name"'],
    [{ inputs: [], parameters: { p: 1.5 } }, 'request "parameters": "p" is 1.5; parameters are booleans, strings or integers'],
    [{ inputs: [], parameters: { p: { nested: true } } }, '"p" is {"nested":true}'],
    [{ inputs: [], parameters: [] }, 'request "parameters" must be an object'],
    [oneInput('INT8', [1], [2 ** 30, 2 ** 30]), 'too many elements to hold'],
  ])('%j is refused', (body, message) => {
    expect(requestError(body).message).toContain(message);
  });
});

function response(outputs: Partial<ModelInferResponse['outputs'][number]>[], raw: Buffer[] = []): ModelInferResponse {
  return ModelInferResponse.fromPartial({ modelName: 'm', modelVersion: '1', id: 'r', outputs, rawOutputContents: raw });
}

function responseError(r: ModelInferResponse): MeshError {
  try {
    inferResponseToJson(r);
  } catch (err) {
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe(status.INTERNAL);
    return err as MeshError;
  }
  throw new Error('expected the conversion to fail');
}

describe('ModelInferResponse → JSON', () => {
  test.each([
    ['BOOL', { boolContents: [true, false] }, [true, false]],
    ['UINT8', { uintContents: [1, 255] }, [1, 255]],
    ['UINT64', { uint64Contents: [Number.MAX_SAFE_INTEGER] }, [Number.MAX_SAFE_INTEGER]],
    ['INT32', { intContents: [-1, 2] }, [-1, 2]],
    ['INT64', { int64Contents: [-(2 ** 40)] }, [-(2 ** 40)]],
    ['FP32', { fp32Contents: [0.5, NaN, Infinity, -Infinity] }, [0.5, 'NaN', 'Infinity', '-Infinity']],
    ['FP64', { fp64Contents: [0.1] }, [0.1]],
    ['BYTES', { bytesContents: [Buffer.from('ok ✓'), Buffer.from([0xc3, 0x28])] }, ['ok ✓', { b64: 'wyg=' }]],
  ])('%s contents become data', (datatype, contents, data) => {
    const json = inferResponseToJson(response([{ name: 'y', datatype, shape: [data.length], contents: { ...empty, ...contents } }]));
    expect(json).toEqual({ model_name: 'm', model_version: '1', id: 'r', outputs: [{ name: 'y', datatype, shape: [data.length], data }] });
  });

  test('raw output contents are decoded, each matched to its output by position', () => {
    const json = inferResponseToJson(response([
      { name: 'a', datatype: 'FP16', shape: [2] },
      { name: 'b', datatype: 'INT64', shape: [1] },
      { name: 'c', datatype: 'BYTES', shape: [2] },
      { name: 'd', datatype: 'BOOL', shape: [1] },
    ], [
      encodeRaw('FP16', [0.5, -2], 'a'), encodeRaw('INT64', [-3], 'b'), encodeRaw('BYTES', [Buffer.from('x'), Buffer.from([0xff])], 'c'),
      Buffer.from([1]),
    ]));
    expect(json.outputs.map((o) => o.data)).toEqual([[0.5, -2], [-3], ['x', { b64: '/w==' }], [true]]);
  });

  test('parameters are given as plain JSON values', () => {
    const json = inferResponseToJson(ModelInferResponse.fromPartial({
      parameters: { a: { boolParam: true }, b: { int64Param: 4 }, c: { stringParam: 's' } },
      outputs: [{ name: 'y', datatype: 'INT32', shape: [0], parameters: { unit: { stringParam: 'ms' } } }],
    }));
    expect(json.parameters).toEqual({ a: true, b: 4, c: 's' });
    expect(json.outputs[0]).toEqual({ name: 'y', datatype: 'INT32', shape: [0], parameters: { unit: 'ms' }, data: [] });
  });

  test('a response that cannot be given as JSON is INTERNAL, naming the output', () => {
    const big = Buffer.alloc(8);
    big.writeBigInt64LE(2n ** 62n);
    expect(responseError(response([{ name: 'n', datatype: 'INT64', shape: [1] }], [big])).message)
      .toMatch(/^the model's response cannot be given as JSON: output tensor "n" element 0 is 4611686018427387904, beyond ±\(2\^53 - 1\)/);
    expect(responseError(response([{ name: 'f', datatype: 'FP32', shape: [1] }], [Buffer.alloc(3)])).message)
      .toContain('output tensor "f": raw contents of 3 bytes are not a whole number of FP32 elements');
    expect(responseError(response([{ name: 'a', datatype: 'INT8' }, { name: 'b', datatype: 'INT8' }], [Buffer.alloc(1)])).message)
      .toBe('the model\'s response has 1 raw_output_contents for 2 outputs');
    expect(responseError(response([{ name: 'q', datatype: 'COMPLEX64' }])).message)
      .toBe('the model\'s output tensor "q" has datatype "COMPLEX64", not a KServe v2 datatype');
    expect(responseError(response([{ name: 'h', datatype: 'FP16', shape: [1] }])).message)
      .toBe('the model\'s FP16 output tensor "h" came without raw_output_contents');
  });
});

describe('decoding the gRPC response', () => {
  test('a 64-bit integer beyond ±(2^53 - 1) in the response is refused with a plain message', () => {
    const bytes = ModelInferResponse.encode(ModelInferResponse.fromPartial({
      outputs: [{ name: 'n', datatype: 'INT64', shape: [1], contents: { int64Contents: [2 ** 60] } }],
    })).finish();
    let error: unknown;
    try {
      decodeInferResponse(Buffer.from(bytes));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MeshError);
    expect(error).toMatchObject({ code: status.INTERNAL, message: expect.stringContaining('holds a 64-bit integer beyond ±(2^53 - 1)') });
  });

  test('bytes that are not a ModelInferResponse are INTERNAL', () => {
    expect(() => decodeInferResponse(Buffer.from([0x0a, 0xff]))).toThrow(/not a valid ModelInferResponse/);
  });

  test('a valid response decodes unchanged', () => {
    const message = ModelInferResponse.fromPartial({ modelName: 'm', outputs: [{ name: 'y', datatype: 'INT64', shape: [1], contents: { int64Contents: [-7] } }] });
    expect(decodeInferResponse(Buffer.from(ModelInferResponse.encode(message).finish()))).toEqual(message);
  });
});
