import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { inferModel, inferenceClient } from '../harness/inference';
import { MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { httpGet, waitFor } from '../harness/wait';

/**
 * Start-up fail-fast: a new instance that cannot load models which load fine elsewhere (here its pod lacks the
 * PVC the models live on, as a broken new version might) trips within its clearance period, reports not ready with
 * the reason, takes no further loads and no routed requests, while the mesh keeps answering through it.
 */

const MODELS = ['m1', 'm2', 'm3', 'm4'];
const group = new ProcessGroup();
const clients: GRPCInferenceServiceClient[] = [];
let base: string;
let good: MeshHandle;
let bad: MeshHandle;

/** Folders for one mesh's built-in puller; `withClaim` mounts the `models` claim. */
function pullerFolders(name: string, withClaim: boolean): Record<string, string> {
  const dir = join(base, name);
  const storageConfigDir = join(dir, 'storage-config');
  mkdirSync(storageConfigDir, { recursive: true });
  writeFileSync(join(storageConfigDir, 'shared'), JSON.stringify({ type: 'pvc', name: 'models' }));
  const pvcMountsDir = withClaim ? join(base, 'pvc_mounts') : join(dir, 'pvc_mounts');
  mkdirSync(pvcMountsDir, { recursive: true });
  return { STORAGE_CONFIG_DIR: storageConfigDir, ROOT_MODEL_DIR: join(dir, 'models'), MM_PVC_MOUNTS_DIR: pvcMountsDir };
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'mm-failfast-'));
  mkdirSync(join(base, 'pvc_mounts', 'models'), { recursive: true });
  for (const id of [...MODELS, 'late']) writeFileSync(join(base, 'pvc_mounts', 'models', id), `${id}: `);
  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), uniquePrefix('failfast'))}`;
  const [goodRuntime, badRuntime] = await Promise.all([startExampleRuntime(group, 'runtime good'), startExampleRuntime(group, 'runtime bad')]);
  good = await startMesh(group, { instanceId: 'good', runtimePort: goodRuntime.port, kvStore, env: pullerFolders('good', true) });
  for (const id of MODELS) {
    await callMesh(good.client, 'registerModel', { modelId: id, modelInfo: { type: 'example', path: id, key: '{"storage_key":"shared"}' } });
    const loaded = await callMesh(good.client, 'ensureLoaded', { modelId: id, sync: true }, { 'mm-load-here': 'true' });
    expect(loaded.status).toBe(ModelStatus.LOADED);
  }
  bad = await startMesh(group, {
    instanceId: 'bad', runtimePort: badRuntime.port, kvStore, env: { ...pullerFolders('bad', false), BOOTSTRAP_CLEARANCE_PERIOD_MS: '120000' },
  });
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const mesh of [good, bad]) mesh?.client.close();
  await group.stopAll();
  if (base) rmSync(base, { recursive: true, force: true });
});

test('three failed loads of models loaded elsewhere trip the check; the instance stays not ready and out of placement', async () => {
  expect((await httpGet(`http://127.0.0.1:${bad.probePort}/ready`)).status).toBe(200);

  // Loads placed exactly on the new instance, as a rollout's moves would be; each fails there and is served elsewhere.
  for (const id of MODELS.slice(0, 3)) {
    await callMesh(bad.client, 'ensureLoaded', { modelId: id, sync: true }, { 'mm-load-here': 'true' }).catch(() => undefined);
  }
  const probe = await waitFor('the bad instance to report not ready', async () => {
    const answer = await httpGet(`http://127.0.0.1:${bad.probePort}/ready`);
    return answer.status === 503 ? answer : undefined;
  }, { timeoutMs: 20_000 });
  expect(probe.body).toContain('start-up fail-fast');
  expect(probe.body).toContain('3 loads failed here of models that are loaded on other instances');
  expect(bad.process.log).toContain('start-up fail-fast');

  // It does not untrip on its own.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect((await httpGet(`http://127.0.0.1:${bad.probePort}/ready`)).status).toBe(503);

  // Calls entering the tripped instance are served by the healthy one; a new model is placed there, not here.
  const viaBad = inferenceClient(bad.grpcPort);
  clients.push(viaBad);
  for (const id of MODELS) expect(await inferModel(viaBad, id, 'x')).toBe(`${id}: x`);
  await callMesh(bad.client, 'registerModel', { modelId: 'late', modelInfo: { type: 'example', path: 'late', key: '{"storage_key":"shared"}' } });
  expect(await inferModel(viaBad, 'late', 'y')).toBe('late: y');
  const status = await callMesh(good.client, 'getModelStatus', { modelId: 'late' });
  expect(status.modelCopyInfos.map((c) => c.location)).toEqual(['good']);
  expect((await httpGet(`http://127.0.0.1:${good.probePort}/ready`)).status).toBe(200);
}, 120_000);
