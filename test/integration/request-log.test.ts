import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { bytesRequest, infer, inferenceClient } from '../harness/inference';
import { MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { waitFor } from '../harness/wait';

/**
 * With MM_LOG_EACH_INVOKE=true every instance a call passes through logs one JSON line for it, and all of them carry
 * the same request id: the caller's `x-request-id`, or one the first instance made.
 */

const group = new ProcessGroup();
let dir: string;
let meshes: MeshHandle[];
let viaPeer: GRPCInferenceServiceClient;

interface CallLine { msg: string; requestId: string; destination: string; modelId: string; code: string; method: string; level: string }

function callLines(mesh: MeshHandle): CallLine[] {
  return mesh.process.log.split('\n').filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as CallLine).filter((l) => l.msg === 'call');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mm-reqlog-'));
  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), uniquePrefix('reqlog'))}`;
  const runtimes = await Promise.all([0, 1].map((i) => startExampleRuntime(group, `runtime ${i}`)));
  meshes = await Promise.all(runtimes.map((runtime, i) => startMesh(group, {
    instanceId: `log-${i}`, runtimePort: runtime.port, kvStore, env: { MM_LOG_EACH_INVOKE: 'true', MM_SCALEUP_RPM_THRESHOLD: '1000000' },
  })));
  const path = join(dir, 'm');
  writeFileSync(path, 'm: ');
  await callMesh(meshes[0].client, 'registerModel', { modelId: 'm', modelInfo: { type: 'example', path, key: '' } });
  expect((await callMesh(meshes[0].client, 'ensureLoaded', { modelId: 'm', sync: true }, { 'mm-load-here': 'true' })).status).toBe(ModelStatus.LOADED);
  viaPeer = inferenceClient(meshes[1].grpcPort);
  // The forwarding instance must know where the copy is before the first call, or it would load one itself.
  await waitFor('mesh log-1 to see the copy on log-0', async () => (await callMesh(meshes[1].client, 'getModelStatus', { modelId: 'm' }))
    .modelCopyInfos.some((c) => c.location === 'log-0'));
}, 90_000);

afterAll(async () => {
  viaPeer?.close();
  for (const mesh of meshes ?? []) mesh.client.close();
  await group.stopAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the caller\'s x-request-id is logged by the entry instance and by the instance that served the call', async () => {
  await infer(viaPeer, bytesRequest('x'), { 'mm-model-id': 'm', 'x-request-id': 'req-from-caller' });
  const [entry, server] = await waitFor('both call lines', () => {
    const a = callLines(meshes[1]).find((l) => l.requestId === 'req-from-caller');
    const b = callLines(meshes[0]).find((l) => l.requestId === 'req-from-caller');
    return a && b ? [a, b] as const : undefined;
  });
  expect(entry).toMatchObject({ level: 'info', method: 'inference.GRPCInferenceService/ModelInfer', modelId: 'm', code: 'OK', destination: 'peer' });
  expect(server).toMatchObject({ modelId: 'm', code: 'OK', destination: 'local' });
});

test('without one, the entry instance makes an id and the serving instance logs the same', async () => {
  const before = new Set(callLines(meshes[1]).map((l) => l.requestId));
  await infer(viaPeer, bytesRequest('y'), { 'mm-model-id': 'm' });
  const made = await waitFor('a new call line on the entry instance', () => callLines(meshes[1]).find((l) => !before.has(l.requestId)));
  expect(made.requestId).toMatch(/^[0-9a-f-]{36}$/);
  await waitFor('the same id on the serving instance', () => callLines(meshes[0]).some((l) => l.requestId === made.requestId));
});
