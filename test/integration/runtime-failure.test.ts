import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceError } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { inferModel, inferenceClient } from '../harness/inference';
import { ExampleRuntimeHandle, MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { httpGet, waitFor } from '../harness/wait';

/**
 * The model server beside a mesh dies: calls that reach that mesh are retried on another copy, the mesh reports not
 * ready and its copies leave the registry; when the model server is back the mesh serves again.
 */

const group = new ProcessGroup();
const rootPrefix = uniquePrefix('runtime-failure');
const namespace = `${rootPrefix}/mm/modelmesh-serving/`.replace(/\/{2,}/g, '/');
const clients: GRPCInferenceServiceClient[] = [];
let etcd: Etcd3;
let runtimes: ExampleRuntimeHandle[];
let meshes: MeshHandle[];
let modelDir: string;

async function copiesOnMesh0(): Promise<boolean> {
  const raw = await etcd.get(`${namespace}registry/m`).string();
  return 'mesh-0' in (JSON.parse(raw ?? '{"copies":{}}') as { copies: Record<string, unknown> }).copies;
}

beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'mm-runtime-failure-'));
  etcd = new Etcd3({ hosts: sharedEtcdEndpoint() });
  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), rootPrefix)}`;
  runtimes = await Promise.all([0, 1].map((i) => startExampleRuntime(group, `runtime ${i}`)));
  meshes = await Promise.all(runtimes.map((runtime, i) => startMesh(group, { instanceId: `mesh-${i}`, runtimePort: runtime.port, kvStore })));
  const path = join(modelDir, 'm');
  writeFileSync(path, 'm: ');
  await callMesh(meshes[0].client, 'registerModel', { modelId: 'm', modelInfo: { type: 'example', path, key: '' } });
  const loaded = await callMesh(meshes[0].client, 'ensureLoaded', { modelId: 'm', sync: true }, { 'mm-load-here': 'true' });
  expect(loaded.status).toBe(ModelStatus.LOADED);
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const mesh of meshes ?? []) mesh.client.close();
  await group.stopAll();
  etcd?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

test('calls keep succeeding when the model server under the serving mesh is killed, and the mesh recovers when it returns', async () => {
  const entry = meshes.map((m) => {
    const client = inferenceClient(m.grpcPort);
    clients.push(client);
    return client;
  });
  let stop = false;
  let sent = 0;
  const failures: string[] = [];
  const workers = [0, 1, 2, 3].map(async (w) => {
    while (!stop) {
      const n = sent++;
      try {
        const answer = await inferModel(entry[w % 2], 'm', String(n));
        if (answer !== `m: ${n}`) failures.push(`wrong answer ${answer}`);
      } catch (err) {
        failures.push(`${(err as ServiceError).code}: ${(err as ServiceError).details}`);
      }
    }
  });
  await waitFor('calls flowing', () => sent > 40);
  await runtimes[0].process.kill();
  await waitFor('mesh-0 to report not ready and give up its copy', async () =>
    (await httpGet(`http://127.0.0.1:${meshes[0].probePort}/ready`)).status === 503 && !(await copiesOnMesh0()), { timeoutMs: 15_000, intervalMs: 200 });
  const sentWhileDown = sent;
  await waitFor('calls while the model server is down', () => sent > sentWhileDown + 40, { timeoutMs: 15_000 });

  runtimes[0] = await startExampleRuntime(group, 'runtime 0 again', [], runtimes[0].port);
  await waitFor('mesh-0 ready again', async () => (await httpGet(`http://127.0.0.1:${meshes[0].probePort}/ready`)).status === 200,
    { timeoutMs: 15_000, intervalMs: 200 });
  stop = true;
  await Promise.all(workers);
  expect(failures).toEqual([]);
}, 90_000);
