import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../../lib/contract';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus, VModelStatusInfo_VModelStatus as VModelStatus } from '../../proto/gen/model-mesh';
import { catalogModelId } from '../../runtime/src/lifecycle/catalog';
import { bytesRequest, infer, inferenceClient, outputText } from '../harness/inference';
import { MeshHandle, callMesh, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { waitFor } from '../harness/wait';

/** Declared models: a model added to the catalog file is served under its name, then gone once removed. */

const group = new ProcessGroup();
let dir: string;
let catalogPath: string;
let mesh: MeshHandle;
let client: GRPCInferenceServiceClient;

/** Replaces the catalog the way a ConfigMap update does: a new file swapped in. */
function writeCatalog(catalog: unknown): void {
  const next = `${catalogPath}.next`;
  writeFileSync(next, JSON.stringify(catalog));
  renameSync(next, catalogPath);
}

async function inferByName(modelName: string, input: string): Promise<string> {
  return outputText(await infer(client, bytesRequest(input, modelName), {}, 20_000));
}

const declared = (name: string, text: string): Catalog['models'][number] => {
  const path = join(dir, `${name}.txt`);
  writeFileSync(path, text);
  return { name, modelType: 'example', modelFormat: { name: 'example' }, path };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mm-catalog-'));
  catalogPath = join(dir, 'models.json');
  writeCatalog({ version: 1, models: [] });
  const runtime = await startExampleRuntime(group, 'runtime');
  mesh = await startMesh(group, { instanceId: 'solo', runtimePort: runtime.port, kvStore: 'embedded', env: { MM_CATALOG_PATH: catalogPath } });
  client = inferenceClient(mesh.grpcPort);
}, 90_000);

afterAll(async () => {
  client?.close();
  mesh?.client.close();
  await group.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('a model added to the catalog is served by its name; invalid entries are reported and skipped', async () => {
  const greeter = declared('greeter', 'hello, ');
  writeCatalog({ version: 1, models: [greeter, { name: 'broken entry!', modelType: 'example' }] });
  await waitFor('the greeter vmodel', async () => (await callMesh(mesh.client, 'getVModelStatus', { vModelId: 'greeter' })).status === VModelStatus.DEFINED,
    { timeoutMs: 20_000, intervalMs: 200 });
  expect(await inferByName('greeter', 'world')).toBe('hello, world');
  expect(mesh.process.log).toContain('catalog entry 1 (broken entry!): name must be 1-253 letters');
});

test('a changed entry moves the vmodel to a new model; a removed entry is gone with its model', async () => {
  const changed = { ...declared('greeter', 'hi, '), path: join(dir, 'greeter-v2.txt') };
  writeFileSync(changed.path, 'hi, ');
  writeCatalog({ version: 1, models: [changed] });
  await waitFor('greeter to answer from its new model', async () => (await inferByName('greeter', 'there')) === 'hi, there', { timeoutMs: 20_000, intervalMs: 200 });
  const oldModel = catalogModelId(declared('greeter', 'hello, '));
  await waitFor('the old model to be deleted', async () => (await callMesh(mesh.client, 'getModelStatus', { modelId: oldModel })).status === ModelStatus.NOT_FOUND,
    { timeoutMs: 20_000, intervalMs: 200 });

  writeCatalog({ version: 1, models: [] });
  await waitFor('greeter to be gone', async () => (await callMesh(mesh.client, 'getVModelStatus', { vModelId: 'greeter' })).status === VModelStatus.NOT_FOUND,
    { timeoutMs: 20_000, intervalMs: 200 });
  await expect(inferByName('greeter', 'x')).rejects.toMatchObject({ code: 5 });
  expect((await callMesh(mesh.client, 'getModelStatus', { modelId: catalogModelId(changed) })).status).toBe(ModelStatus.NOT_FOUND);
});
