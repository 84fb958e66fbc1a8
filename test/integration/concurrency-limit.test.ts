import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceError, status } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { inferModel, inferenceClient } from '../harness/inference';
import { MeshHandle, callMesh, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';

/**
 * A runtime that limits each model's concurrency (limitModelConcurrency): the mesh sends each copy at most that many
 * calls at once, queues a bounded number more, and refuses the rest with RESOURCE_EXHAUSTED. One mesh on the
 * embedded store is enough.
 */

const INFER_DELAY_MS = 300;
const QUEUE = 2;
const group = new ProcessGroup();
let mesh: MeshHandle;
let client: GRPCInferenceServiceClient;
let modelDir: string;

beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'mm-concurrency-'));
  const runtime = await startExampleRuntime(group, 'runtime', ['--model-concurrency', '1', '--infer-delay-ms', String(INFER_DELAY_MS)]);
  mesh = await startMesh(group, { instanceId: 'solo', runtimePort: runtime.port, kvStore: 'embedded', env: { MM_MAX_QUEUED_PER_COPY: String(QUEUE) } });
  client = inferenceClient(mesh.grpcPort);
  const path = join(modelDir, 'm');
  writeFileSync(path, 'm: ');
  const result = await callMesh(mesh.client, 'registerModel', { modelId: 'm', modelInfo: { type: 'example', path, key: '' }, loadNow: true, sync: true });
  expect(result.status).toBe(ModelStatus.LOADED);
}, 90_000);

afterAll(async () => {
  client?.close();
  mesh?.client.close();
  await group.stopAll();
  rmSync(modelDir, { recursive: true, force: true });
});

test('calls beyond the copy\'s limit wait in a bounded queue; beyond the queue they are RESOURCE_EXHAUSTED', async () => {
  const started = Date.now();
  const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => inferModel(client, 'm', String(i))
    .catch((err: ServiceError) => `${status[err.code]}: ${err.details}`)));
  const served = outcomes.filter((o) => o.startsWith('m: '));
  const refused = outcomes.filter((o) => o.startsWith('RESOURCE_EXHAUSTED'));
  expect(served).toHaveLength(1 + QUEUE);
  expect(refused).toHaveLength(6 - 1 - QUEUE);
  expect(refused[0]).toContain('model m is serving its limit of 1 concurrent calls and 2 more are waiting');
  // One at a time: the served calls took at least three inference delays back to back.
  expect(Date.now() - started).toBeGreaterThanOrEqual(3 * INFER_DELAY_MS);
});
