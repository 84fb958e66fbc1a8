import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials, Metadata, ServiceError, status } from '@grpc/grpc-js';
import {
  GRPCInferenceServiceClient, InferTensorContents, ModelInferRequest, ModelInferResponse,
} from '../../proto/gen/grpc_predict_v2';
import { ModelRuntimeClient, RuntimeStatusResponse_Status } from '../../proto/gen/model-runtime';
import { decodeRawBytes, encodeRawBytes } from '../../runtime/servers/shared/bytes-tensor';
import { VERSION } from '../../runtime/src/version';
import { SAMPLE_MODEL_PATH, sampleReference } from '../../scripts/make-sample-onnx';
import { encodeOnnxModel, OnnxDataType, OnnxDataTypeCode } from '../../scripts/onnx-encode';
import { startOnnxRuntime } from '../harness/modelmesh';
import { ManagedProcess, ProcessGroup } from '../harness/processes';
import { waitFor } from '../harness/wait';

/** `modelmesh runtime onnx` as a real process with real onnxruntime sessions, driven by independent grpc-js clients. */

const SAMPLE_DIR = resolve(__dirname, '..', '..', SAMPLE_MODEL_PATH, '..');
const SAMPLE_BYTES = 297;
const group = new ProcessGroup();
const closers: { close(): void }[] = [];
let dir: string;

type Callback<T> = (err: ServiceError | null, value: T) => void;
function call<T>(invoke: (callback: Callback<T>) => unknown): Promise<T> {
  return new Promise((done, fail) => { invoke((err, value) => (err ? fail(err) : done(value))); });
}

function header(modelId: string): Metadata {
  const metadata = new Metadata();
  metadata.set('mm-model-id', modelId);
  return metadata;
}

function connect(port: number) {
  const address = `127.0.0.1:${port}`;
  const clients = {
    spi: new ModelRuntimeClient(address, credentials.createInsecure()),
    infer: new GRPCInferenceServiceClient(address, credentials.createInsecure()),
  };
  closers.push(clients.spi, clients.infer);
  return clients;
}

/** An Identity graph: input `in_<T>` → output `out_<T>`, shape [n], for each type. */
function identityModel(types: readonly (keyof typeof OnnxDataType)[]): Buffer {
  const code = (t: keyof typeof OnnxDataType): OnnxDataTypeCode => OnnxDataType[t];
  return encodeOnnxModel({
    irVersion: 7,
    opsetVersion: 13,
    producerName: 'onnx-runtime.test',
    producerVersion: '1',
    graphName: 'identity',
    nodes: types.map((t) => ({ opType: 'Identity', inputs: [`in_${t}`], outputs: [`out_${t}`] })),
    inputs: types.map((t) => ({ name: `in_${t}`, elemType: code(t), dims: ['n'] })),
    outputs: types.map((t) => ({ name: `out_${t}`, elemType: code(t), dims: ['n'] })),
  });
}

/** Per KServe datatype: the identity model's ONNX type, typed contents and the same values raw. */
const TYPES: { onnx: keyof typeof OnnxDataType; datatype: string; typed: Partial<InferTensorContents>; raw: Buffer }[] = [
  { onnx: 'BOOL', datatype: 'BOOL', typed: { boolContents: [true, false, true] }, raw: Buffer.from([1, 0, 1]) },
  { onnx: 'UINT8', datatype: 'UINT8', typed: { uintContents: [0, 7, 255] }, raw: Buffer.from([0, 7, 255]) },
  { onnx: 'INT8', datatype: 'INT8', typed: { intContents: [-128, 5, 127] }, raw: Buffer.from(new Int8Array([-128, 5, 127]).buffer) },
  { onnx: 'UINT16', datatype: 'UINT16', typed: { uintContents: [0, 300, 65535] }, raw: Buffer.from(new Uint16Array([0, 300, 65535]).buffer) },
  { onnx: 'INT16', datatype: 'INT16', typed: { intContents: [-32768, 12, 32767] }, raw: Buffer.from(new Int16Array([-32768, 12, 32767]).buffer) },
  { onnx: 'UINT32', datatype: 'UINT32', typed: { uintContents: [0, 70000, 4294967295] }, raw: Buffer.from(new Uint32Array([0, 70000, 4294967295]).buffer) },
  { onnx: 'INT32', datatype: 'INT32', typed: { intContents: [-5, 0, 2147483647] }, raw: Buffer.from(new Int32Array([-5, 0, 2147483647]).buffer) },
  // Raw carries 64-bit values exactly, beyond what the typed (number) lists can.
  { onnx: 'INT64', datatype: 'INT64', typed: { int64Contents: [-9007199254740991, 0, 42] }, raw: Buffer.from(new BigInt64Array([-(2n ** 62n), 0n, 42n]).buffer) },
  { onnx: 'UINT64', datatype: 'UINT64', typed: { uint64Contents: [0, 1, 9007199254740991] }, raw: Buffer.from(new BigUint64Array([2n ** 63n + 5n, 1n, 0n]).buffer) },
  { onnx: 'FLOAT', datatype: 'FP32', typed: { fp32Contents: [1.5, -2, 0.25] }, raw: Buffer.from(new Float32Array([1.5, -2, 0.25]).buffer) },
  { onnx: 'DOUBLE', datatype: 'FP64', typed: { fp64Contents: [0.1, -2.5, 1e300] }, raw: Buffer.from(new Float64Array([0.1, -2.5, 1e300]).buffer) },
  {
    onnx: 'STRING',
    datatype: 'BYTES',
    typed: { bytesContents: ['héllo', '', 'x'].map((s) => Buffer.from(s)) },
    raw: encodeRawBytes(['héllo', '', 'x'].map((s) => Buffer.from(s))),
  },
];

/** ModelInfer for the sample model with rows of x, as typed contents or raw. */
function sampleRequest(rows: number[][], raw: boolean, modelName = ''): ModelInferRequest {
  const values = rows.flat();
  const input = { name: 'x', datatype: 'FP32', shape: [rows.length, 4], ...(raw ? {} : { contents: { fp32Contents: values } }) };
  return ModelInferRequest.fromPartial({ modelName, inputs: [input], rawInputContents: raw ? [Buffer.from(new Float32Array(values).buffer)] : [] });
}

function expectSampleResult(response: ModelInferResponse, rows: number[][], raw: boolean): void {
  expect(response.outputs).toHaveLength(1);
  expect(response.outputs[0]).toMatchObject({ name: 'y', datatype: 'FP32', shape: [rows.length, 3] });
  let y: number[];
  if (raw) {
    expect(response.rawOutputContents).toHaveLength(1);
    const bytes = Buffer.from(response.rawOutputContents[0]);
    y = Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
  } else {
    expect(response.rawOutputContents).toEqual([]);
    y = response.outputs[0].contents!.fp32Contents;
  }
  const expected = rows.flatMap(sampleReference);
  expect(y).toHaveLength(expected.length);
  y.forEach((value, i) => expect(value).toBeCloseTo(expected[i], 5));
}

const ROWS = [[1, 2, 3, 4], [0, 0, 0, 1], [-0.5, 0.25, 8, 1e-3]];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mm-onnx-models-'));
  writeFileSync(join(dir, 'types.onnx'), identityModel(TYPES.map((t) => t.onnx)));
  writeFileSync(join(dir, 'half.onnx'), identityModel(['FLOAT16']));
  writeFileSync(join(dir, 'corrupt.onnx'), Buffer.from('this is not an ONNX model, just text\n'));
});

afterAll(async () => {
  for (const client of closers) client.close();
  await group.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('modelmesh runtime onnx', () => {
  let proc: ManagedProcess;
  let c: ReturnType<typeof connect>;
  const load = (modelId: string, modelPath: string, modelType = 'mt:onnx:1', modelKey = '') =>
    call((cb) => c.spi.loadModel({ modelId, modelType, modelPath, modelKey }, cb));
  const infer = (modelId: string, request: ModelInferRequest) => call<ModelInferResponse>((cb) => c.infer.modelInfer(request, header(modelId), cb));

  beforeAll(async () => {
    const runtime = await startOnnxRuntime(group, 'onnx-runtime', ['--capacity', '100000000', '--load-timeout-ms', '20000',
      '--max-loading-concurrency', '2']);
    proc = runtime.process;
    c = connect(runtime.port);
  }, 70_000);

  test('runtimeStatus answers READY with its settings; the log says where the capacity came from', async () => {
    expect(await call((cb) => c.spi.runtimeStatus({}, cb))).toEqual({
      status: RuntimeStatusResponse_Status.READY,
      capacityInBytes: 100_000_000,
      maxLoadingConcurrency: 2,
      modelLoadingTimeoutMs: 20_000,
      defaultModelSizeInBytes: 1_000_000,
      runtimeVersion: VERSION,
      numericRuntimeVersion: 0,
      methodInfos: {},
      limitModelConcurrency: false,
      allowAnyMethod: true,
    });
    expect(proc.log).toContain('capacity 100000000 bytes, from --capacity');
  });

  test('the sample model loads from its folder; sizes are the file size × 1.25', async () => {
    const expectedSize = Math.ceil(SAMPLE_BYTES * 1.25);
    expect(await call((cb) => c.spi.predictModelSize({ modelId: 'sample', modelType: 'mt:onnx', modelPath: SAMPLE_DIR, modelKey: '' }, cb)))
      .toEqual({ sizeInBytes: expectedSize });
    expect(await load('sample', SAMPLE_DIR, 'mt:onnx:1|pv:grpc-v2')).toEqual({ sizeInBytes: expectedSize, maxConcurrency: 0 });
    expect(await call((cb) => c.spi.modelSize({ modelId: 'sample' }, cb))).toEqual({ sizeInBytes: expectedSize });
    // Loading again is idempotent.
    expect(await load('sample', SAMPLE_DIR)).toEqual({ sizeInBytes: expectedSize, maxConcurrency: 0 });
  });

  test('ModelInfer computes y = x · W + b, with typed contents and with raw contents', async () => {
    expectSampleResult(await infer('sample', sampleRequest(ROWS, false)), ROWS, false);
    expectSampleResult(await infer('sample', sampleRequest(ROWS, true)), ROWS, true);
    // Without the mesh's header, the request's model name selects the model.
    const direct = await call<ModelInferResponse>((cb) => c.infer.modelInfer(sampleRequest(ROWS.slice(0, 1), false, 'sample'), cb));
    expectSampleResult(direct, ROWS.slice(0, 1), false);
  });

  test('ModelMetadata, ModelReady and the server calls describe the runtime and the graph', async () => {
    expect(await call((cb) => c.infer.modelMetadata({ name: '', version: '' }, header('sample'), cb))).toEqual({
      name: 'sample',
      versions: [],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
    });
    expect(await call((cb) => c.infer.modelReady({ name: 'sample', version: '' }, cb))).toEqual({ ready: true });
    expect(await call((cb) => c.infer.modelReady({ name: 'nope', version: '' }, cb))).toEqual({ ready: false });
    expect(await call((cb) => c.infer.serverLive({}, cb))).toEqual({ live: true });
    expect(await call((cb) => c.infer.serverReady({}, cb))).toEqual({ ready: true });
    expect(await call((cb) => c.infer.serverMetadata({}, cb))).toEqual({ name: 'modelmesh-onnx-runtime', version: VERSION, extensions: [] });
  });

  test('bad inputs are INVALID_ARGUMENT naming the tensor and what the model expects', async () => {
    const bad = (request: Parameters<typeof ModelInferRequest.fromPartial>[0], pattern: RegExp) =>
      expect(infer('sample', ModelInferRequest.fromPartial(request))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(pattern) });
    const fp32 = (shape: number[], n: number) => ({ name: 'x', datatype: 'FP32', shape, contents: { fp32Contents: new Array<number>(n).fill(1) } });
    await bad({ inputs: [fp32([2, 3], 6)] }, /input tensor "x" has shape \[2, 3\]; model sample expects \[-1, 4\]/);
    await bad({ inputs: [fp32([4], 4)] }, /input tensor "x" has shape \[4\]; model sample expects \[-1, 4\]/);
    await bad({ inputs: [fp32([2, 4], 5)] }, /input tensor "x" holds 5 values in fp32_contents; its shape \[2, 4\] needs 8/);
    await bad({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 4], contents: { intContents: [1, 2, 3, 4] } }] },
      /input tensor "x" has datatype INT32; model sample expects FP32/);
    await bad({ inputs: [{ ...fp32([1, 4], 4), name: 'z' }] }, /input tensor "z" does not exist in model sample; it takes "x" \(FP32 \[-1, 4\]\)/);
    await bad({ inputs: [] }, /input tensor "x" is missing; model sample takes "x" \(FP32 \[-1, 4\]\)/);
    await bad({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }], rawInputContents: [Buffer.alloc(12)] },
      /input tensor "x": raw contents hold 12 bytes; shape \[1, 4\] of FP32 needs 16/);
    await bad({ inputs: [fp32([1, 4], 4)], outputs: [{ name: 'w' }] }, /requested output tensor "w" does not exist in model sample; it has "y"/);
  });

  test('an unknown model is NOT_FOUND naming it', async () => {
    await expect(infer('never-loaded', sampleRequest(ROWS, false)))
      .rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining('never-loaded') });
    await expect(call((cb) => c.infer.modelMetadata({ name: 'never-loaded', version: '' }, cb)))
      .rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining('never-loaded') });
  });

  test('every KServe v2 datatype round-trips through onnxruntime, typed and raw; only requested outputs come back', async () => {
    await load('types', join(dir, 'types.onnx'), 'onnx');
    const inputs = (raw: boolean) => TYPES.map((t) => ({ name: `in_${t.onnx}`, datatype: t.datatype, shape: [3], ...(raw ? {} : { contents: t.typed }) }));

    const typed = await infer('types', ModelInferRequest.fromPartial({ inputs: inputs(false) }));
    expect(typed.rawOutputContents).toEqual([]);
    expect(typed.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual(TYPES.map((t) => [`out_${t.onnx}`, t.datatype, [3]]));
    typed.outputs.forEach((output, i) => expect(output.contents).toMatchObject(TYPES[i].typed));

    const raw = await infer('types', ModelInferRequest.fromPartial({ inputs: inputs(true), rawInputContents: TYPES.map((t) => t.raw) }));
    expect(raw.outputs.every((o) => o.contents === undefined)).toBe(true);
    expect(raw.rawOutputContents.map((b) => Buffer.from(b))).toEqual(TYPES.map((t) => t.raw));
    expect(decodeRawBytes(raw.rawOutputContents[TYPES.length - 1], 'out_STRING').map(String)).toEqual(['héllo', '', 'x']);

    const some = await infer('types', ModelInferRequest.fromPartial({ inputs: inputs(false), outputs: [{ name: 'out_STRING' }, { name: 'out_INT64' }] }));
    expect(some.outputs.map((o) => o.name)).toEqual(['out_STRING', 'out_INT64']);

    await expect(infer('types', ModelInferRequest.fromPartial({
      inputs: inputs(false).map((input) => (input.name === 'in_INT8' ? { ...input, contents: { intContents: [1, 2, 300] } } : input)),
    }))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/input tensor "in_INT8": element 2 is 300, outside INT8's range -128..127/) });
  });

  test('FP16 travels raw; typed FP16 is refused with the reason', async () => {
    await load('half', join(dir, 'half.onnx'));
    expect(await call((cb) => c.infer.modelMetadata({ name: 'half', version: '' }, cb)))
      .toMatchObject({ inputs: [{ name: 'in_FLOAT16', datatype: 'FP16', shape: [-1] }] });
    const bits = Buffer.from(new Uint16Array([0x3c00, 0x4000, 0xc000]).buffer);
    const answer = await infer('half', ModelInferRequest.fromPartial({ inputs: [{ name: 'in_FLOAT16', datatype: 'FP16', shape: [3] }], rawInputContents: [bits] }));
    expect(Buffer.from(answer.rawOutputContents[0])).toEqual(bits);
    await expect(infer('half', ModelInferRequest.fromPartial({ inputs: [{ name: 'in_FLOAT16', datatype: 'FP16', shape: [1], contents: { fp32Contents: [1] } }] })))
      .rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/FP16, which KServe v2 carries only in raw_input_contents/) });
  });

  test('a corrupt model fails to load with onnxruntime\'s own message; the runtime keeps serving the others', async () => {
    const corrupt = join(dir, 'corrupt.onnx');
    await expect(load('corrupt', corrupt)).rejects.toMatchObject({
      code: status.INTERNAL,
      details: expect.stringMatching(new RegExp(`onnxruntime could not load ${corrupt}: Load model from ${corrupt} failed:.*Protobuf parsing failed`)),
    });
    expect(await call((cb) => c.infer.modelReady({ name: 'corrupt', version: '' }, cb))).toEqual({ ready: false });
    expectSampleResult(await infer('sample', sampleRequest(ROWS, true)), ROWS, true);
  });

  test('loads that are refused or find nothing say why', async () => {
    await expect(load('sk', SAMPLE_DIR, 'mt:sklearn')).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT, details: expect.stringMatching(/model type "mt:sklearn" is not served by the ONNX runtime/),
    });
    await expect(load('keyed', SAMPLE_DIR, 'rt:onnx', JSON.stringify({ model_type: { name: 'sklearn' } }))).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT, details: expect.stringMatching(/the model key names format "sklearn"/),
    });
    const missing = join(dir, 'missing.onnx');
    await expect(load('missing', missing)).rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining(missing) });
    await expect(load('empty-dir', dir)).rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringMatching(/holds no model\.onnx/) });
  });

  test('unloadModel releases the model: NOT_FOUND afterwards; unloading again succeeds', async () => {
    await load('bye', SAMPLE_DIR);
    expectSampleResult(await infer('bye', sampleRequest(ROWS, false)), ROWS, false);
    expect(await call((cb) => c.spi.unloadModel({ modelId: 'bye' }, cb))).toEqual({});
    await expect(infer('bye', sampleRequest(ROWS, false))).rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining('bye') });
    await expect(call((cb) => c.spi.modelSize({ modelId: 'bye' }, cb))).rejects.toMatchObject({ code: status.NOT_FOUND });
    expect(await call((cb) => c.spi.unloadModel({ modelId: 'bye' }, cb))).toEqual({});
    expect(proc.log).toContain('unloading model bye');
  });

  test('runtimeStatus purges every model before answering READY', async () => {
    expect(await call((cb) => c.infer.modelReady({ name: 'sample', version: '' }, cb))).toEqual({ ready: true });
    await call((cb) => c.spi.runtimeStatus({}, cb));
    expect(await call((cb) => c.infer.modelReady({ name: 'sample', version: '' }, cb))).toEqual({ ready: false });
    expect(await call((cb) => c.infer.modelReady({ name: 'types', version: '' }, cb))).toEqual({ ready: false });
  });

  test('SIGTERM stops it cleanly', async () => {
    expect(await proc.stop()).toBe(0);
    await waitFor('the stop log line', () => proc.log.includes('onnx-runtime: stopped'));
  });
});

describe('modelmesh runtime onnx capacity from the container memory request', () => {
  test('capacity = CONTAINER_MEM_REQ_BYTES − MEM_BUFFER_BYTES, as upstream\'s adapters compute it', async () => {
    const runtime = await startOnnxRuntime(group, 'onnx-runtime-memreq', [], {
      CONTAINER_MEM_REQ_BYTES: String(1024 ** 3), MEM_BUFFER_BYTES: String(128 * 1024 ** 2), LOADTIME_TIMEOUT: '90000',
    });
    const { spi } = connect(runtime.port);
    expect(await call((cb) => spi.runtimeStatus({}, cb)))
      .toMatchObject({ capacityInBytes: 1024 ** 3 - 128 * 1024 ** 2, modelLoadingTimeoutMs: 90_000 });
    expect(runtime.process.log).toContain('from CONTAINER_MEM_REQ_BYTES (1073741824) − MEM_BUFFER_BYTES (134217728)');
    expect(await runtime.process.stop()).toBe(0);
  }, 70_000);
});
