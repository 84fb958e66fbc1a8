import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';

/**
 * A model's first load has no measured size: the mesh reserves the runtime's default size and asks for the predicted
 * size alongside the load. Models far bigger than the default must still never leave the runtime over its capacity:
 * the reservation grows (evicting idle copies) when the prediction says more, and the measured size is checked again.
 */

const MiB = 1024 * 1024;
const CAPACITY = 25 * MiB;
const DEFAULT_SIZE = MiB;
const MODEL_SIZE = 10 * MiB;

const group = new ProcessGroup();
let mesh: MeshHandle;
let modelDir: string;

beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'mm-sizing-models-'));
  const runtime = await startExampleRuntime(group, 'runtime', [
    '--capacity', String(CAPACITY), '--default-model-size', String(DEFAULT_SIZE), '--model-size', String(MODEL_SIZE),
    // The prediction answers while the load still runs, so the reservation grows before the load ends.
    '--load-delay-ms', '300',
  ]);
  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), uniquePrefix('sizing'))}`;
  mesh = await startMesh(group, { instanceId: 'mesh-0', runtimePort: runtime.port, kvStore });
}, 120_000);

afterAll(async () => {
  mesh?.client.close();
  await group.stopAll();
  rmSync(modelDir, { recursive: true, force: true });
});

test('models ten times the default size load one after another without the runtime going over capacity', async () => {
  const ids = ['first', 'second', 'third'];
  for (const modelId of ids) {
    const path = join(modelDir, modelId);
    writeFileSync(path, `${modelId}: `);
    await callMesh(mesh.client, 'registerModel', { modelId, modelInfo: { type: 'example', path, key: '' } });
    const loaded = await callMesh(mesh.client, 'ensureLoaded', { modelId, sync: true });
    expect(loaded.status).toBe(ModelStatus.LOADED);
  }
  // Two 10 MiB copies fit in 25 MiB, three do not: the least recently used one made room for the third.
  const statuses = await Promise.all(ids.map(async (modelId) => (await callMesh(mesh.client, 'getModelStatus', { modelId })).status));
  expect(statuses).toEqual([ModelStatus.NOT_LOADED, ModelStatus.LOADED, ModelStatus.LOADED]);
});
