import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { runCli } from '../harness/cli';
import { MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { waitFor } from '../harness/wait';

/** `modelmesh status` and `modelmesh models …` against a running three-instance mesh on real etcd. */

const group = new ProcessGroup();
let dir: string;
let meshes: MeshHandle[];
const at = (mesh: MeshHandle) => `127.0.0.1:${mesh.grpcPort}`;

function modelFile(id: string, text = `${id}: `): string {
  const path = join(dir, id);
  writeFileSync(path, text);
  return path;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mm-operator-'));
  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), uniquePrefix('operator'))}`;
  const runtimes = await Promise.all([0, 1, 2].map((i) => startExampleRuntime(group, `runtime ${i}`)));
  meshes = await Promise.all(runtimes.map((runtime, i) => startMesh(group, { instanceId: `op-${i}`, runtimePort: runtime.port, kvStore })));
  // One copy on each of the first two instances, placed exactly.
  for (const [id, mesh] of [['alpha', meshes[0]], ['beta', meshes[1]]] as const) {
    await callMesh(mesh.client, 'registerModel', { modelId: id, modelInfo: { type: 'example', path: modelFile(id), key: '' } });
    expect((await callMesh(mesh.client, 'ensureLoaded', { modelId: id, sync: true }, { 'mm-load-here': 'true' })).status).toBe(ModelStatus.LOADED);
  }
  await callMesh(meshes[0].client, 'registerModel', { modelId: 'broken-fail', modelInfo: { type: 'example', path: modelFile('broken-fail'), key: '' }, loadNow: true, sync: true });
  await callMesh(meshes[0].client, 'setVModel', { vModelId: 'greeter', targetModelId: 'alpha', owner: 'ops' });
}, 120_000);

afterAll(async () => {
  for (const mesh of meshes ?? []) mesh.client.close();
  await group.stopAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('status prints every instance with its cache, copies and the one leader', async () => {
  // Instance records are published on change; wait until the answering instance sees both copies.
  const result = await waitFor('status to show the copies', async () => {
    const r = await runCli('status', '--mesh', at(meshes[2]), '--json');
    const parsed = JSON.parse(r.out) as { instances: Array<{ instanceId: string; copies: number; leader: boolean; capacityBytes: number }> };
    return parsed.instances.filter((i) => i.copies === 1).length === 2 ? { r, parsed } : undefined;
  }, { timeoutMs: 20_000 });
  expect(result.r.code).toBe(0);
  expect(result.parsed).toMatchObject({ serviceName: 'modelmesh-serving', answeredBy: 'op-2', models: 3, modelsLoaded: 2, modelsWithFailure: 1, vmodels: 1 });
  expect(result.parsed.instances.map((i) => [i.instanceId, i.copies])).toEqual([['op-0', 1], ['op-1', 1], ['op-2', 0]]);
  expect(result.parsed.instances.filter((i) => i.leader)).toHaveLength(1);

  const table = await runCli('status', '--mesh', at(meshes[0]));
  expect(table.code).toBe(0);
  const lines = table.out.split('\n');
  expect(lines[0]).toBe('mesh modelmesh-serving: 3 instance(s), answered by op-0; models 3 (loaded 2, with failures 1), vmodels 1');
  expect(lines[2]).toMatch(/^instance\s+address\s+leader\s+state\s+capacity\s+used\s+copies\s+loading\s+rpm\s+in flight\s+version\s+up\s+lru age$/);
  const rows = lines.slice(4, 7);
  expect(rows.map((row) => row.split(/\s+/)[0])).toEqual(['op-0', 'op-1', 'op-2']);
  expect(rows.filter((row) => /\syes\s/.test(row))).toHaveLength(1);
  for (const row of rows) expect(row).toMatch(/ serving +256 MiB /);
});

test('status --model and --vmodel show copies, failures and the vmodel\'s models', async () => {
  const alpha = await runCli('status', '--mesh', at(meshes[1]), '--model', 'alpha');
  expect(alpha.code).toBe(0);
  expect(alpha.out).toContain('model alpha: LOADED');
  expect(alpha.out).toMatch(/op-0\s+LOADED/);

  const broken = await runCli('status', '--mesh', at(meshes[1]), '--model', 'broken-fail');
  expect(broken.out).toContain('model broken-fail: LOADING_FAILED');
  expect(broken.out).toContain('load failures:');
  expect(broken.out).toMatch(/fail/);

  const vmodel = await runCli('status', '--mesh', at(meshes[1]), '--vmodel', 'greeter');
  expect(vmodel.out).toContain('vmodel greeter: DEFINED');
  expect(vmodel.out).toContain('active model alpha: LOADED');
  expect(vmodel.out).toContain('owner ops');

  const missing = await runCli('status', '--mesh', at(meshes[1]), '--model', 'nobody');
  expect(missing.code).toBe(1);
  expect(missing.out).toContain('model nobody: NOT_FOUND');
});

test('models register --file registers in bulk with progress; list shows them; delete removes them', async () => {
  const entries = Array.from({ length: 25 }, (_, i) => ({ modelId: `bulk-${String(i).padStart(2, '0')}`, type: 'example', path: modelFile(`bulk-${i}`) }));
  const file = join(dir, 'models.jsonl');
  writeFileSync(file, entries.map((e) => JSON.stringify(e)).join('\n'));
  const registered = await runCli('models', 'register', '--file', file, '--mesh', at(meshes[2]), '--concurrency', '4');
  expect(registered.code).toBe(0);
  expect(registered.out).toBe('registered 25 of 25 model(s)\n');
  expect(registered.err).toContain('registering: 25/25');

  const list = await runCli('models', 'list', '--prefix', 'bulk-', '--mesh', at(meshes[0]), '--json');
  expect((JSON.parse(list.out) as Array<{ modelId: string }>).map((m) => m.modelId)).toEqual(entries.map((e) => e.modelId));
  const table = await runCli('models', 'list', '--mesh', at(meshes[0]));
  expect(table.out).toMatch(/^alpha\s+example\s+op-0\s+-\s+0/m);
  expect(table.out).toContain('28 model(s)');

  const deleted = await runCli('models', 'delete', 'bulk-00', 'bulk-01', '--mesh', at(meshes[1]));
  expect(deleted.out).toBe('deleted bulk-00\ndeleted bulk-01\n');
  const after = await runCli('models', 'list', '--prefix', 'bulk-0', '--mesh', at(meshes[1]), '--json');
  expect((JSON.parse(after.out) as Array<{ modelId: string }>).map((m) => m.modelId)).not.toContain('bulk-00');
});

test('errors: an unreachable mesh, a bad file, bad usage', async () => {
  const port = await freePort();
  const down = await runCli('status', '--mesh', `127.0.0.1:${port}`);
  expect(down.code).toBe(1);
  expect(down.err).toContain(`cannot reach the mesh at 127.0.0.1:${port}`);

  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify([{ modelId: 'x', type: 'example', path: '/p' }, { modelId: 'x', type: 'example', path: '/q' }]));
  const bad = await runCli('models', 'register', '--file', file, '--mesh', at(meshes[0]));
  expect(bad.code).toBe(2);
  expect(bad.err).toContain('entry 2: model id "x" appears twice');

  const usage = await runCli('models', 'register', 'only-id', '--mesh', at(meshes[0]));
  expect(usage.code).toBe(2);
  expect(usage.err).toContain('register needs --type and --path');
  expect((await runCli('status', '--mesh', 'nonsense')).err).toContain('--mesh must be host:port');
});
