import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Metadata, ServiceError, status } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient, ModelInferRequest, ModelInferResponse } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { SAMPLE_MODEL_PATH, sampleReference } from '../../scripts/make-sample-onnx';
import { inferenceClient } from '../harness/inference';
import { MeshHandle, callMesh, startMesh, startOnnxRuntime } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { S3Emulator, startS3rver } from '../harness/storage-servers';
import { httpPostJson, waitFor } from '../harness/wait';

/**
 * Real model serving end to end: ONNX models in an S3-compatible store (s3rver), a mesh with its built-in puller
 * (STORAGE_CONFIG_DIR set) and `modelmesh runtime onnx`. Models are registered with registerModel and answered over
 * gRPC and REST; results are compared with y = x·W + b computed here.
 */

const SAMPLE = readFileSync(resolve(__dirname, '..', '..', SAMPLE_MODEL_PATH));
const group = new ProcessGroup();
let s3: S3Emulator;
let base: string;
let rootModelDir: string;
let mesh: MeshHandle;
let grpc: GRPCInferenceServiceClient;

const ROWS = [[1, 2, 3, 4], [0.5, -1, 0, 2]];

beforeAll(async () => {
  s3 = await startS3rver();
  await s3.createBucket('models');
  await s3.put('models', 'fraud/v1/model.onnx', SAMPLE);
  await s3.put('models', 'single/model.onnx', SAMPLE);
  await s3.put('models', 'broken/model.onnx', Buffer.from('these bytes are not an ONNX protobuf\n'));

  base = mkdtempSync(join(tmpdir(), 'mm-serving-'));
  const storageConfigDir = join(base, 'storage-config');
  rootModelDir = join(base, 'models');
  mkdirSync(storageConfigDir);
  // What the storage-config secret mount looks like: one file per storage key.
  writeFileSync(join(storageConfigDir, 'localMinIO'), JSON.stringify({
    type: 's3',
    endpoint_url: s3.endpoint,
    region: 'us-east-1',
    bucket: 'models',
    access_key_id: s3.accessKeyId,
    secret_access_key: s3.secretAccessKey,
  }));
  const runtime = await startOnnxRuntime(group, 'onnx runtime');
  mesh = await startMesh(group, {
    instanceId: 'puller-1',
    runtimePort: runtime.port,
    kvStore: 'embedded',
    rest: true,
    env: { STORAGE_CONFIG_DIR: storageConfigDir, ROOT_MODEL_DIR: rootModelDir },
  });
  grpc = inferenceClient(mesh.grpcPort);
}, 90_000);

afterAll(async () => {
  grpc?.close();
  mesh?.client.close();
  await group.stopAll();
  await s3?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

function inferGrpc(modelId: string, rows: number[][]): Promise<ModelInferResponse> {
  const request = ModelInferRequest.fromPartial({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 4], contents: { fp32Contents: rows.flat() } }],
  });
  const metadata = new Metadata();
  metadata.set('mm-model-id', modelId);
  return new Promise((done, fail) => {
    grpc.modelInfer(request, metadata, { deadline: Date.now() + 60_000 }, (err: ServiceError | null, res) => (err ? fail(err) : done(res)));
  });
}

function expectClose(actual: readonly number[], expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, i) => expect(value).toBeCloseTo(expected[i], 5));
}

const modelKey = (extra: Record<string, unknown> = {}) => JSON.stringify({ storage_key: 'localMinIO', model_type: 'onnx', ...extra });

test('a model folder in S3 is pulled, loaded and answers over gRPC and REST', async () => {
  await callMesh(mesh.client, 'registerModel', { modelId: 'fraud-v1', modelInfo: { type: 'onnx', path: 'fraud/v1', key: modelKey() } });

  const response = await inferGrpc('fraud-v1', ROWS);
  expect(response.outputs[0]).toMatchObject({ name: 'y', datatype: 'FP32', shape: [2, 3] });
  expectClose(response.outputs[0].contents!.fp32Contents, ROWS.flatMap(sampleReference));

  const rest = await httpPostJson(mesh.restPort!, '/v2/models/fraud-v1/infer', {
    inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: ROWS.flat() }],
  });
  expect(rest.status).toBe(200);
  const outputs = (rest.json as { outputs: Array<{ name: string; shape: number[]; data: number[] }> }).outputs;
  expect(outputs[0]).toMatchObject({ name: 'y', shape: [2, 3] });
  expectClose(outputs[0].data, ROWS.flatMap(sampleReference));

  // The runtime was given the pulled folder, not the S3 path.
  expect(readdirSync(join(rootModelDir, 'fraud-v1', 'v1'))).toEqual(['model.onnx']);
}, 120_000);

test('a storage URI names the bucket itself; unregistering deletes the pulled files', async () => {
  await callMesh(mesh.client, 'registerModel', {
    modelId: 'single', modelInfo: { type: 'onnx', path: 's3://models/single/model.onnx', key: modelKey() }, loadNow: true, sync: true,
  });
  expect(existsSync(join(rootModelDir, 'single', 'model.onnx'))).toBe(true);
  const response = await inferGrpc('single', [[1, 2, 3, 4]]);
  expectClose(response.outputs[0].contents!.fp32Contents, [2.25, 13, 4.5]);

  await callMesh(mesh.client, 'unregisterModel', { modelId: 'single' });
  await waitFor('the pulled folder of an unregistered model to be deleted', () => !existsSync(join(rootModelDir, 'single')), { timeoutMs: 20_000 });
}, 120_000);

test('a corrupt model fails with LOADING_FAILED carrying onnxruntime\'s message; other models keep serving', async () => {
  const info = await callMesh(mesh.client, 'registerModel', {
    modelId: 'broken', modelInfo: { type: 'onnx', path: 'broken', key: modelKey() }, loadNow: true, sync: true,
  });
  expect(info.status).toBe(ModelStatus.LOADING_FAILED);
  expect(info.errors.join('\n')).toMatch(/protobuf parsing failed|Load model .* failed/i);

  const err = await inferGrpc('broken', [[1, 2, 3, 4]]).then(() => undefined, (e: ServiceError) => e);
  expect(err?.code).toBeDefined();
  expect(err?.code).not.toBe(status.OK);
  expect(err?.details).toMatch(/protobuf parsing failed|Load model .* failed/i);
  // Nothing of the failed model stays on disk.
  await waitFor('the failed model\'s files to be deleted', () => !existsSync(join(rootModelDir, 'broken')), { timeoutMs: 20_000 });

  const response = await inferGrpc('fraud-v1', [[1, 2, 3, 4]]);
  expectClose(response.outputs[0].contents!.fp32Contents, [2.25, 13, 4.5]);
}, 120_000);

test('a missing object and an unknown storage key fail naming the key and the object', async () => {
  const missing = await callMesh(mesh.client, 'registerModel', {
    modelId: 'missing', modelInfo: { type: 'onnx', path: 'nothing/here.onnx', key: modelKey() }, loadNow: true, sync: true,
  });
  expect(missing.status).toBe(ModelStatus.LOADING_FAILED);
  expect(missing.errors.join('\n')).toContain("storage key 'localMinIO'");
  expect(missing.errors.join('\n')).toContain('nothing/here.onnx');

  const unknown = await callMesh(mesh.client, 'registerModel', {
    modelId: 'unknown-key', modelInfo: { type: 'onnx', path: 'fraud/v1', key: modelKey({ storage_key: 'nope' }) }, loadNow: true, sync: true,
  });
  expect(unknown.status).toBe(ModelStatus.LOADING_FAILED);
  expect(unknown.errors.join('\n')).toContain("'nope'");
}, 120_000);
