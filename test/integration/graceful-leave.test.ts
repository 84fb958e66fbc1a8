import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceError } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { inferModel, inferenceClient } from '../harness/inference';
import { MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { httpGet, waitFor } from '../harness/wait';

/**
 * Make-before-break: an instance told to leave (SIGTERM, or GET /prestop) gets its recently used models loaded
 * elsewhere before it unloads them, and keeps serving meanwhile — calls entering the other instances never fail.
 */

const LOAD_DELAY_MS = 300;
const FIRST = ['a', 'b', 'c', 'd', 'e'];
const SECOND = ['f', 'g', 'h', 'i', 'j'];
const group = new ProcessGroup();
const rootPrefix = uniquePrefix('leave');
const namespace = `${rootPrefix}/mm/modelmesh-serving/`.replace(/\/{2,}/g, '/');
const clients: GRPCInferenceServiceClient[] = [];
let etcd: Etcd3;
let meshes: MeshHandle[];
let modelDir: string;

/** Drives calls for every model through `entries` until stopped; returns what failed. */
function traffic(entries: MeshHandle[], models: readonly string[]) {
  let stop = false;
  let sent = 0;
  const failures: string[] = [];
  const entryClients = entries.map((m) => {
    const client = inferenceClient(m.grpcPort);
    clients.push(client);
    return client;
  });
  const workers = Array.from({ length: 6 }, async (_, w) => {
    while (!stop) {
      const n = sent++;
      const model = models[n % models.length];
      try {
        const answer = await inferModel(entryClients[w % entryClients.length], model, String(n));
        if (answer !== `${model}: ${n}`) failures.push(`wrong answer ${answer}`);
      } catch (err) {
        failures.push(`${(err as ServiceError).code}: ${(err as ServiceError).details}`);
      }
    }
  });
  return { get sent() { return sent; }, failures, stop: async () => { stop = true; await Promise.all(workers); } };
}

async function loadAllOn(mesh: MeshHandle, models: readonly string[]): Promise<void> {
  for (const id of models) {
    const path = join(modelDir, id);
    writeFileSync(path, `${id}: `);
    await callMesh(mesh.client, 'registerModel', { modelId: id, modelInfo: { type: 'example', path, key: '' } });
    // The peers' internal "load here" call puts the only copy exactly on this instance.
    const result = await callMesh(mesh.client, 'ensureLoaded', { modelId: id, sync: true }, { 'mm-load-here': 'true' });
    expect(result.status).toBe(ModelStatus.LOADED);
    expect(await loadedOn(id)).toEqual([mesh.instanceId]);
  }
}

async function loadedOn(modelId: string): Promise<string[]> {
  const raw = await etcd.get(`${namespace}registry/${modelId}`).string();
  const copies = (JSON.parse(raw ?? '{"copies":{}}') as { copies: Record<string, { state: string }> }).copies;
  return Object.entries(copies).filter(([, c]) => c.state === 'loaded').map(([id]) => id).sort();
}

beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'mm-leave-models-'));
  etcd = new Etcd3({ hosts: sharedEtcdEndpoint() });
  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), rootPrefix)}`;
  const runtimes = await Promise.all([0, 1, 2].map((i) => startExampleRuntime(group, `runtime ${i}`, ['--load-delay-ms', String(LOAD_DELAY_MS)])));
  meshes = await Promise.all(runtimes.map((runtime, i) => startMesh(group, {
    instanceId: `mesh-${i}`, runtimePort: runtime.port, kvStore, env: { SHUTDOWN_TIMEOUT_MS: '20000' },
  })));
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const mesh of meshes ?? []) mesh.client.close();
  await group.stopAll();
  etcd?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

test('SIGTERM: recently used models load elsewhere first, calls through the others never fail, and the process exits 0', async () => {
  await loadAllOn(meshes[2], FIRST);
  const flow = traffic([meshes[0], meshes[1]], FIRST);
  await waitFor('calls flowing', () => flow.sent > 50);
  const exit = meshes[2].process.stop('SIGTERM', 30_000);
  expect(await exit).toBe(0);
  const sentAtExit = flow.sent;
  await waitFor('calls after the leave', () => flow.sent > sentAtExit + 50, { timeoutMs: 20_000 });
  await flow.stop();
  expect(flow.failures).toEqual([]);
  for (const id of FIRST) {
    const holders = await loadedOn(id);
    expect(holders.length).toBeGreaterThan(0);
    expect(holders).not.toContain('mesh-2');
  }
  expect(await etcd.get(`${namespace}instances/mesh-2`).string()).toBeNull();
}, 60_000);

test('GET /prestop answers once the instance has left, with its models loaded elsewhere', async () => {
  await loadAllOn(meshes[1], SECOND);
  const flow = traffic([meshes[0]], SECOND);
  await waitFor('calls flowing', () => flow.sent > 30);
  const { status } = await httpGet(`http://127.0.0.1:${meshes[1].prestopPort}/prestop`, 30_000);
  expect(status).toBe(200);
  for (const id of SECOND) expect(await loadedOn(id)).toEqual(['mesh-0']);
  expect(await etcd.get(`${namespace}instances/mesh-1`).string()).toBeNull();
  expect((await httpGet(`http://127.0.0.1:${meshes[1].probePort}/ready`)).status).toBe(503);
  await flow.stop();
  expect(flow.failures).toEqual([]);
}, 60_000);
