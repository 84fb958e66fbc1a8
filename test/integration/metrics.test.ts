import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceError, status } from '@grpc/grpc-js';
import { dashboardJson } from '../../lib/monitoring';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { inferModel, inferenceClient } from '../harness/inference';
import { MeshHandle, callMesh, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ProcessGroup } from '../harness/processes';
import { httpGet, waitFor } from '../harness/wait';

/**
 * `/metrics` of a real mesh under traffic: upstream's metric names and labels, counts that move with what happened
 * (calls by status, loads, a cache miss, an eviction, a failed load), the instance and leader gauges, and the
 * shipped Grafana dashboard querying only metrics the mesh exports.
 */

/** Ten default-sized models, as the mesh requires; it holds two models of MODEL_SIZE, not three. */
const DEFAULT_MODEL_SIZE = 8_192;
const CAPACITY = 10 * DEFAULT_MODEL_SIZE;
const MODEL_SIZE = 30_000;
const group = new ProcessGroup();
let dir: string;
let mesh: MeshHandle;
let metricsPort: number;
let client: GRPCInferenceServiceClient;

/** `name{labels} value` lines of a scrape, keyed by the series as printed. */
async function scrape(): Promise<{ text: string; value(series: string): number | undefined }> {
  const answer = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(answer.status).toBe(200);
  const values = new Map<string, number>();
  for (const line of answer.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { text: answer.body, value: (series) => values.get(series) };
}

function register(modelId: string, text: string): Promise<unknown> {
  const path = join(dir, modelId);
  writeFileSync(path, text);
  return callMesh(mesh.client, 'registerModel', { modelId, modelInfo: { type: 'example', path, key: '' } });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mm-metrics-'));
  // Room for two models: the third evicts the least recently used.
  const runtime = await startExampleRuntime(group, 'runtime',
    ['--capacity', String(CAPACITY), '--model-size', String(MODEL_SIZE), '--default-model-size', String(DEFAULT_MODEL_SIZE)]);
  metricsPort = await freePort();
  mesh = await startMesh(group, {
    instanceId: 'metrics-1', runtimePort: runtime.port, kvStore: 'embedded', env: { MM_METRICS: `prometheus:port=${metricsPort};scheme=http` },
  });
  client = inferenceClient(mesh.grpcPort);
}, 90_000);

afterAll(async () => {
  client?.close();
  mesh?.client.close();
  await group.stopAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('calls, loads, misses, evictions and failures show up with upstream\'s names and labels', async () => {
  const before = await scrape();
  expect(before.value('modelmesh_instance_capacity_bytes')).toBe(CAPACITY);
  expect(before.value('modelmesh_instance_models_total')).toBe(0);

  // The example runtime refuses files whose name contains "fail".
  await register('broken-fail', 'never loads');
  const failed = await inferModel(client, 'broken-fail', 'x').catch((err: ServiceError) => err);
  expect((failed as ServiceError).code).toBeDefined();
  await register('a', 'a: ');
  await register('b', 'b: ');
  await register('c', 'c: ');
  const answer = (modelId: string, input: string) => inferModel(client, modelId, input);
  for (let i = 0; i < 10; i++) expect(await answer('a', String(i))).toBe(`a: ${i}`);
  for (let i = 0; i < 5; i++) expect(await answer('b', String(i))).toBe(`b: ${i}`);
  // The third model needs room: 'a' (least recently used) is evicted.
  expect(await answer('c', 'x')).toBe('c: x');
  const missing = await inferModel(client, 'nobody', 'x').catch((err: ServiceError) => err);
  expect((missing as ServiceError).code).toBe(status.NOT_FOUND);

  const after = await waitFor('the leader gauges to appear', async () => {
    const s = await scrape();
    return s.value('modelmesh_models_managed_total') !== undefined ? s : undefined;
  }, { timeoutMs: 20_000 });
  const v = (series: string) => after.value(series) ?? 0;
  expect(v('modelmesh_api_request_milliseconds_count{method="ModelInfer",code="OK"}')).toBe(16);
  expect(v('modelmesh_invoke_model_milliseconds_count{method="ModelInfer",code="OK"}')).toBe(16);
  expect(v('modelmesh_api_request_milliseconds_count{method="ModelInfer",code="NOT_FOUND"}')).toBe(1);
  expect(v('modelmesh_request_size_bytes_count{method="ModelInfer",code="OK"}')).toBe(16);
  expect(v('modelmesh_response_size_bytes_sum{method="ModelInfer",code="OK"}')).toBeGreaterThan(16 * 5);
  expect(v('modelmesh_requests_by_destination_total{destination="local"}')).toBe(16);
  expect(v('modelmesh_requests_by_destination_total{destination="none"}')).toBeGreaterThanOrEqual(2);
  // Each model's first call was a miss that waited for its load.
  expect(v('modelmesh_cache_miss_milliseconds_count')).toBeGreaterThanOrEqual(3);
  expect(v('modelmesh_loadmodel_milliseconds_count')).toBe(3);
  expect(v('modelmesh_loading_queue_delay_milliseconds_count')).toBeGreaterThanOrEqual(4);
  expect(v('modelmesh_loadmodel_failure')).toBeGreaterThanOrEqual(1);
  expect(v('modelmesh_age_at_eviction_milliseconds_count')).toBe(1);
  expect(v('modelmesh_unloadmodel_milliseconds_count')).toBeGreaterThanOrEqual(1);
  expect(v('modelmesh_instance_models_total')).toBe(2);
  expect(v('modelmesh_instance_used_bytes')).toBe(2 * MODEL_SIZE);
  expect(v('modelmesh_instance_used_bps')).toBe(Math.round((10_000 * 2 * MODEL_SIZE) / CAPACITY));
  expect(v('modelmesh_instance_lru_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
  expect(v('modelmesh_models_managed_total')).toBe(4);
  expect(v('modelmesh_models_loaded_total')).toBe(2);
  expect(v('modelmesh_models_with_failure_total')).toBe(1);
  expect(after.text).toContain('# TYPE modelmesh_api_request_milliseconds histogram');
  expect(after.text).toContain('modelmesh_api_request_milliseconds_bucket{le="0.5",method="ModelInfer",code="OK"}');
}, 120_000);

test('the Grafana dashboard queries only metrics the mesh exports', async () => {
  const exported = new Set([...(await scrape()).text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => m[1]));
  const queried = new Set([...dashboardJson('modelmesh-serving').matchAll(/modelmesh_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')));
  expect(queried.size).toBeGreaterThan(5);
  for (const name of queried) expect({ name, exported: exported.has(name) }).toEqual({ name, exported: true });
});
