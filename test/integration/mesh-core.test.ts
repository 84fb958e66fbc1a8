import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceError, status } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { ModelStatusInfo_ModelStatus as ModelStatus, VModelStatusInfo_VModelStatus as VModelStatus } from '../../proto/gen/model-mesh';
import { inferModel, inferenceClient } from '../harness/inference';
import { ExampleRuntimeHandle, MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { waitFor } from '../harness/wait';

/**
 * The mesh core as operators see it: three `modelmesh serve` instances beside three example runtimes, one real
 * etcd, driven through the management API by an independent grpc-js client. Tests run in order on shared state.
 */

const MiB = 1024 * 1024;
const CAPACITY = 400 * MiB;
const SERVICE = 'modelmesh-serving';
/** Runtime 0 (only) refuses model paths containing this text. */
const FAILS_ON_FIRST = 'refused-by-runtime-0';

const group = new ProcessGroup();
const rootPrefix = uniquePrefix('core');
const namespace = `${rootPrefix}/mm/${SERVICE}/`.replace(/\/{2,}/g, '/');
let etcd: Etcd3;
let runtimes: ExampleRuntimeHandle[];
let meshes: MeshHandle[];
let modelDir: string;

function modelFile(name: string, text = `${name}:`): string {
  const path = join(modelDir, name);
  writeFileSync(path, text);
  return path;
}

async function expectStatusError(promise: Promise<unknown>, code: status, message: RegExp): Promise<void> {
  const err = await promise.then(() => undefined, (e: ServiceError) => e);
  expect(err).toBeDefined();
  expect({ code: err!.code, details: err!.details }).toEqual({ code, details: expect.stringMatching(message) });
}

/** The registry as etcd holds it: model id → instance ids holding a copy (any state). */
async function copiesByModel(): Promise<Map<string, Record<string, { state: string }>>> {
  const raw = await etcd.getAll().prefix(`${namespace}registry/`).strings();
  return new Map(Object.entries(raw).map(([key, value]) => [key.slice(`${namespace}registry/`.length), (JSON.parse(value) as { copies: Record<string, { state: string }> }).copies]));
}

function copiesPerInstance(copies: Map<string, Record<string, unknown>>, only?: readonly string[]): Map<string, number> {
  const result = new Map<string, number>();
  for (const id of only ?? copies.keys()) {
    for (const instance of Object.keys(copies.get(id) ?? {})) result.set(instance, (result.get(instance) ?? 0) + 1);
  }
  return result;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function inBatches<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }));
}

beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'mm-core-models-'));
  etcd = new Etcd3({ hosts: sharedEtcdEndpoint() });
  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), rootPrefix)}`;
  runtimes = await Promise.all([0, 1, 2].map((i) => startExampleRuntime(group, `runtime ${i}`, [
    '--capacity', String(CAPACITY), '--model-size', String(MiB), ...(i === 0 ? ['--fail-path', FAILS_ON_FIRST] : []),
  ])));
  // mesh-1 claims its just-in-time loads only after 5 s, mesh-2 at once: what a miss writes is then known in advance.
  const claimDelays = ['10', '5000', '0'];
  meshes = await Promise.all(runtimes.map((runtime, i) => startMesh(group, {
    instanceId: `mesh-${i}`, runtimePort: runtime.port, kvStore, env: { MM_LOAD_CLAIM_DELAY_MS: claimDelays[i] },
  })));
}, 120_000);

afterAll(async () => {
  for (const mesh of meshes ?? []) mesh.client.close();
  await group.stopAll();
  etcd?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

describe('management API input checks', () => {
  test('bad input gets the right code and an actionable message, and changes nothing', async () => {
    const client = meshes[0].client;
    await expectStatusError(callMesh(client, 'registerModel', { modelId: '', modelInfo: { type: 'example', path: 'x', key: '' } }),
      status.INVALID_ARGUMENT, /^modelId must not be empty$/);
    await expectStatusError(callMesh(client, 'registerModel', { modelId: 'no-type' }), status.INVALID_ARGUMENT, /modelInfo is required/);
    await expectStatusError(callMesh(client, 'registerModel', { modelId: 'no-type', modelInfo: { type: '', path: '/p', key: '' } }),
      status.INVALID_ARGUMENT, /modelInfo.type must not be empty/);
    await expectStatusError(callMesh(client, 'ensureLoaded', { modelId: 'unknown' }), status.NOT_FOUND, /model unknown is not registered/);
    await expectStatusError(callMesh(client, 'ensureLoaded', { modelId: '' }), status.INVALID_ARGUMENT, /modelId must not be empty/);
    await expectStatusError(callMesh(client, 'setVModel', { vModelId: 'v', targetModelId: 'unknown' }), status.NOT_FOUND,
      /target model unknown not found: register it first or give modelInfo/);
    await expectStatusError(callMesh(client, 'setVModel', { vModelId: '', targetModelId: 'x' }), status.INVALID_ARGUMENT, /vModelId must not be empty/);
    await expectStatusError(callMesh(client, 'setVModel', { vModelId: 'v', targetModelId: '' }), status.INVALID_ARGUMENT, /targetModelId must not be empty/);
    await expectStatusError(callMesh(client, 'setVModel', { vModelId: 'v', targetModelId: 'x', updateOnly: true }), status.NOT_FOUND,
      /vmodel v not found \(updateOnly was set\)/);
    expect((await callMesh(client, 'getModelStatus', { modelId: 'unknown' })).status).toBe(ModelStatus.NOT_FOUND);
    expect((await callMesh(client, 'getVModelStatus', { vModelId: 'v' })).status).toBe(VModelStatus.NOT_FOUND);
    await callMesh(client, 'unregisterModel', { modelId: 'unknown' });
    await callMesh(client, 'deleteVModel', { vModelId: 'v' });
    const stored = await etcd.getAll().prefix(namespace).keys();
    expect(stored.filter((k) => k.includes('/registry/') || k.includes('/vmodels/'))).toEqual([]);
  });

  test('re-registering with different attributes is ALREADY_EXISTS; the same attributes are accepted', async () => {
    const client = meshes[1].client;
    const info = { type: 'example', path: modelFile('same'), key: '' };
    await callMesh(client, 'registerModel', { modelId: 'same', modelInfo: info });
    await callMesh(client, 'registerModel', { modelId: 'same', modelInfo: info });
    await expectStatusError(callMesh(client, 'registerModel', { modelId: 'same', modelInfo: { ...info, path: '/elsewhere' } }),
      status.ALREADY_EXISTS, /model same already exists with different attribute values/);
    expect((await callMesh(client, 'getModelStatus', { modelId: 'same' })).status).toBe(ModelStatus.NOT_LOADED);
  });
});

describe('load failures', () => {
  test('a load that fails on one instance is retried on another and succeeds', async () => {
    const path = modelFile(`model-${FAILS_ON_FIRST}`);
    // mm-balanced lets the receiving instance (mesh-0, whose runtime refuses this path) win the placement.
    const result = await callMesh(meshes[0].client, 'registerModel',
      { modelId: 'retried', modelInfo: { type: 'example', path, key: '' }, loadNow: true, sync: true }, { 'mm-balanced': 'true' });
    expect(result.status).toBe(ModelStatus.LOADED);
    const copies = result.modelCopyInfos.map((c) => [c.location, c.copyStatus]);
    expect(copies).toContainEqual(['mesh-0', ModelStatus.LOADING_FAILED]);
    expect(copies.filter(([, s]) => s === ModelStatus.LOADED)).toHaveLength(1);
    expect(copies.find(([, s]) => s === ModelStatus.LOADED)![0]).not.toBe('mesh-0');
  });

  test('a model that fails everywhere reads LOADING_FAILED with the runtime\'s error text', async () => {
    const path = modelFile('broken-fail-model');
    const result = await callMesh(meshes[2].client, 'registerModel', { modelId: 'broken', modelInfo: { type: 'example', path, key: '' }, loadNow: true, sync: true });
    expect(result.status).toBe(ModelStatus.LOADING_FAILED);
    expect(result.errors).toHaveLength(3);
    for (const error of result.errors) expect(error).toContain(`the example runtime refuses to load ${path}: its file name contains "fail"`);
    const later = await callMesh(meshes[0].client, 'getModelStatus', { modelId: 'broken' });
    expect(later.status).toBe(ModelStatus.LOADING_FAILED);
    expect(later.modelCopyInfos.map((c) => c.location).sort()).toEqual(['mesh-0', 'mesh-1', 'mesh-2']);
  });
});

describe('vmodels', () => {
  async function registerLoaded(id: string): Promise<void> {
    const result = await callMesh(meshes[0].client, 'registerModel', { modelId: id, modelInfo: { type: 'example', path: modelFile(id), key: '' }, loadNow: true, sync: true });
    expect(result.status).toBe(ModelStatus.LOADED);
  }

  test('set creates a vmodel whose active and target are the model', async () => {
    await registerLoaded('va');
    const result = await callMesh(meshes[1].client, 'setVModel', { vModelId: 'v1', targetModelId: 'va' });
    expect(result).toMatchObject({ status: VModelStatus.DEFINED, activeModelId: 'va', targetModelId: 'va', activeModelStatus: { status: ModelStatus.LOADED } });
  });

  test('a transition to a new target switches only once the target is LOADED', async () => {
    await callMesh(meshes[0].client, 'registerModel', { modelId: 'vb', modelInfo: { type: 'example', path: modelFile('vb'), key: '' } });
    const seen: Array<[string, ModelStatus | undefined]> = [];
    const started = await callMesh(meshes[2].client, 'setVModel', { vModelId: 'v1', targetModelId: 'vb', loadNow: true });
    expect(started.targetModelId).toBe('vb');
    const done = await waitFor('v1 to switch to vb', async () => {
      const vmodel = await callMesh(meshes[1].client, 'getVModelStatus', { vModelId: 'v1' });
      const target = await callMesh(meshes[1].client, 'getModelStatus', { modelId: 'vb' });
      seen.push([vmodel.activeModelId, target.status]);
      return vmodel.activeModelId === 'vb' && vmodel.status === VModelStatus.DEFINED ? vmodel : undefined;
    }, { timeoutMs: 20_000, intervalMs: 5 });
    expect(done.activeModelStatus?.status).toBe(ModelStatus.LOADED);
    for (const [active, targetStatus] of seen) if (active === 'vb') expect(targetStatus).toBe(ModelStatus.LOADED);
    // The old active model lost its reference and can be unregistered now; the new one cannot.
    await callMesh(meshes[0].client, 'unregisterModel', { modelId: 'va' });
    await expectStatusError(callMesh(meshes[0].client, 'unregisterModel', { modelId: 'vb' }), status.FAILED_PRECONDITION,
      /model vb is referenced by 1 vmodel\(s\)/);
  });

  test('a failed transition reads TRANSITION_FAILED and the active model keeps serving', async () => {
    const failing = await callMesh(meshes[0].client, 'setVModel', {
      vModelId: 'v1', targetModelId: 'vbad', modelInfo: { type: 'example', path: modelFile('vbad-fail'), key: '' }, loadNow: true,
    });
    expect(failing.activeModelId).toBe('vb');
    const failed = await waitFor('v1 to report TRANSITION_FAILED', async () => {
      const result = await callMesh(meshes[2].client, 'getVModelStatus', { vModelId: 'v1' });
      return result.status === VModelStatus.TRANSITION_FAILED ? result : undefined;
    }, { timeoutMs: 20_000 });
    expect(failed).toMatchObject({
      activeModelId: 'vb',
      targetModelId: 'vbad',
      activeModelStatus: { status: ModelStatus.LOADED },
      targetModelStatus: { status: ModelStatus.LOADING_FAILED },
    });
    expect(failed.targetModelStatus?.errors[0]).toContain('refuses to load');
  });

  test('deleting a vmodel deletes its auto-delete target model', async () => {
    await callMesh(meshes[1].client, 'setVModel', {
      vModelId: 'v2', targetModelId: 'auto', modelInfo: { type: 'example', path: modelFile('auto'), key: '' }, autoDeleteTargetModel: true, loadNow: true, sync: true,
    });
    expect((await callMesh(meshes[1].client, 'getModelStatus', { modelId: 'auto' })).status).toBe(ModelStatus.LOADED);
    await callMesh(meshes[2].client, 'deleteVModel', { vModelId: 'v2' });
    expect((await callMesh(meshes[2].client, 'getVModelStatus', { vModelId: 'v2' })).status).toBe(VModelStatus.NOT_FOUND);
    await waitFor('auto to be unregistered everywhere', async () => {
      for (const mesh of meshes) if ((await callMesh(mesh.client, 'getModelStatus', { modelId: 'auto' })).status !== ModelStatus.NOT_FOUND) return false;
      return true;
    });
  });

  test('another owner can neither change nor delete a vmodel, nor see it', async () => {
    await callMesh(meshes[0].client, 'setVModel', { vModelId: 'v3', targetModelId: 'vb', owner: 'alice' });
    await expectStatusError(callMesh(meshes[1].client, 'setVModel', { vModelId: 'v3', targetModelId: 'vb', owner: 'bob' }),
      status.ALREADY_EXISTS, /vmodel v3 already exists with owner "alice"/);
    await callMesh(meshes[1].client, 'deleteVModel', { vModelId: 'v3', owner: 'bob' });
    expect((await callMesh(meshes[1].client, 'getVModelStatus', { vModelId: 'v3', owner: 'bob' })).status).toBe(VModelStatus.NOT_FOUND);
    expect(await callMesh(meshes[2].client, 'getVModelStatus', { vModelId: 'v3', owner: 'alice' })).toMatchObject({ status: VModelStatus.DEFINED, owner: 'alice' });
  });
});

describe('just-in-time loads', () => {
  test('a miss loads the copy on the instance called; a load within MM_LOAD_CLAIM_DELAY_MS writes only its outcome', async () => {
    /** The copies each write to the model's record carried, from registration to the recorded load on `mesh`. */
    const writesOfMiss = async (mesh: MeshHandle, modelId: string): Promise<Array<Record<string, { state: string }>>> => {
      const client = inferenceClient(mesh.grpcPort);
      await callMesh(mesh.client, 'registerModel', { modelId, modelInfo: { type: 'example', path: modelFile(modelId, 'quick: '), key: '' } });
      const written: Array<Record<string, { state: string }>> = [];
      const watcher = await etcd.watch().key(`${namespace}registry/${modelId}`).create();
      watcher.on('put', (kv) => written.push((JSON.parse(kv.value.toString()) as { copies: Record<string, { state: string }> }).copies));
      try {
        expect(await inferModel(client, modelId, 'x')).toBe('quick: x');
        await waitFor(`the registry to record the loaded copy of ${modelId}`, () => written.some((copies) => copies[mesh.instanceId]?.state === 'loaded'));
      } finally {
        await watcher.cancel();
        client.close();
      }
      return written;
    };
    const loaded = (instance: string) => ({ [instance]: expect.objectContaining({ state: 'loaded' }) });
    const loading = (instance: string) => ({ [instance]: expect.objectContaining({ state: 'loading' }) });
    // mesh-1 (5 s delay): the example runtime's load takes milliseconds, so only the outcome is written.
    for (let i = 0; i < 3; i++) expect(await writesOfMiss(meshes[1], `quick-miss-${i}`)).toEqual([loaded('mesh-1')]);
    // mesh-2 (0): the claim is written first, then the outcome.
    expect(await writesOfMiss(meshes[2], 'claimed-miss')).toEqual([loading('mesh-2'), loaded('mesh-2')]);
  });

  test('a miss whose load fails at once on the instance called is loaded on another and the call answered', async () => {
    const path = modelFile(`jit-${FAILS_ON_FIRST}`, 'refused here: ');
    await callMesh(meshes[0].client, 'registerModel', { modelId: 'jit-refused', modelInfo: { type: 'example', path, key: '' } });
    const client = inferenceClient(meshes[0].grpcPort);
    try {
      // mesh-0 places the copy on itself (the call is there), its runtime refuses the path, the next candidate loads it.
      expect(await inferModel(client, 'jit-refused', 'x')).toBe('refused here: x');
    } finally {
      client.close();
    }
    const copies = (await callMesh(meshes[1].client, 'getModelStatus', { modelId: 'jit-refused' })).modelCopyInfos.map((c) => [c.location, c.copyStatus]);
    expect(copies).toContainEqual(['mesh-0', ModelStatus.LOADING_FAILED]);
    expect(copies.filter(([location, s]) => s === ModelStatus.LOADED && location !== 'mesh-0')).toHaveLength(1);
  });
});

describe('a distributed LRU cache', () => {
  const COUNT = 1000;
  const ids = Array.from({ length: COUNT }, (_, i) => `m${String(i).padStart(4, '0')}`);

  test('1,000 models loaded through every instance spread evenly: no instance holds more than 40% of the copies', async () => {
    const path = modelFile('shared-model');
    await inBatches(ids, 32, (id, i) => callMesh(meshes[i % 3].client, 'registerModel', { modelId: id, modelInfo: { type: 'example', path, key: '' } }));
    await inBatches(ids, 32, async (id, i) => {
      const result = await callMesh(meshes[i % 3].client, 'ensureLoaded', { modelId: id, sync: true });
      if (result.status !== ModelStatus.LOADED) throw new Error(`${id}: ${ModelStatus[result.status]} ${result.errors.join('; ')}`);
    });
    const perInstance = copiesPerInstance(await copiesByModel(), ids);
    const total = [...perInstance.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(COUNT);
    expect(Math.max(...perInstance.values()) / total).toBeLessThanOrEqual(0.4);
  }, 120_000);

  test('when the models outgrow capacity, the least recently used copies are evicted and stay registered', async () => {
    const more = Array.from({ length: 400 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    const path = modelFile('shared-model');
    await inBatches(more, 16, async (id, i) => {
      const result = await callMesh(meshes[i % 3].client, 'registerModel', { modelId: id, modelInfo: { type: 'example', path, key: '' }, loadNow: true, sync: true });
      if (result.status !== ModelStatus.LOADED) throw new Error(`${id}: ${ModelStatus[result.status]} ${result.errors.join('; ')}`);
    });
    const statuses = await Promise.all(ids.map((id) => callMesh(meshes[0].client, 'getModelStatus', { modelId: id })));
    const evicted = ids.filter((_, i) => statuses[i].status === ModelStatus.NOT_LOADED);
    expect(statuses.every((s) => s.status === ModelStatus.LOADED || s.status === ModelStatus.NOT_LOADED)).toBe(true);
    // 1,400 one-MiB models (plus the earlier tests' few) in 3 × 400 MiB: at least 200 copies had to go.
    expect(evicted.length).toBeGreaterThanOrEqual(200);
    // Every instance evicts its own least recently used: the evicted are the earliest loaded, not the newest.
    const newestEvicted = Math.max(...evicted.map((id) => Number(id.slice(1))));
    expect(newestEvicted).toBeLessThan(COUNT * 0.6);
    for (const count of copiesPerInstance(await copiesByModel()).values()) expect(count).toBeLessThanOrEqual(CAPACITY / MiB);
  }, 120_000);
});

describe('instance failure', () => {
  test('kill -9 of a mesh: within its lease TTL its record and copies leave the registry; its models load elsewhere', async () => {
    const victim = meshes[2];
    const before = await copiesByModel();
    const orphaned = [...before].filter(([, copies]) => 'mesh-2' in copies).map(([id]) => id);
    expect(orphaned.length).toBeGreaterThan(0);
    await victim.process.kill();
    const killedAt = Date.now();
    await waitFor('mesh-2 record and copies to leave the registry', async () => {
      const instance = await etcd.get(`${namespace}instances/mesh-2`).string();
      if (instance !== null) return false;
      for (const copies of (await copiesByModel()).values()) if ('mesh-2' in copies) return false;
      return true;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    // Lease TTL is 3 s; reaping follows the lease's expiry.
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    for (const id of orphaned.slice(0, 20)) {
      const result = await callMesh(meshes[0].client, 'ensureLoaded', { modelId: id, sync: true });
      expect(result.status).toBe(ModelStatus.LOADED);
      expect(result.modelCopyInfos.filter((c) => c.copyStatus === ModelStatus.LOADED).map((c) => c.location)).not.toContain('mesh-2');
    }
  }, 60_000);
});
