import { MeshMetrics, codeName } from '../../../runtime/src/metrics/mesh-metrics';

const instance = () => ({ capacityBytes: 1_000, usedBytes: 250, models: 3, lruTime: 1_000_000 });

describe('MeshMetrics', () => {
  test('a call is recorded under the short method name and the code name', async () => {
    const metrics = MeshMetrics.create({ perModel: false, instance, mesh: () => undefined, now: () => 1_010_000 });
    metrics.call({ method: 'inference.GRPCInferenceService/ModelInfer', code: 0, ms: 3, requestBytes: 100, responseBytes: 40, destination: 'local', modelId: 'm' });
    metrics.call({ method: 'inference.GRPCInferenceService/ModelInfer', code: 5, ms: 1, requestBytes: 100, responseBytes: 0, destination: 'none' });
    const { body } = await metrics.scrape();
    expect(body).toContain('modelmesh_api_request_milliseconds_count{method="ModelInfer",code="OK"} 1');
    expect(body).toContain('modelmesh_api_request_milliseconds_count{method="ModelInfer",code="NOT_FOUND"} 1');
    expect(body).toContain('modelmesh_invoke_model_milliseconds_count{method="ModelInfer",code="OK"} 1');
    expect(body).not.toContain('modelmesh_invoke_model_milliseconds_count{method="ModelInfer",code="NOT_FOUND"}');
    expect(body).toContain('modelmesh_request_size_bytes_sum{method="ModelInfer",code="OK"} 100');
    expect(body).toContain('modelmesh_instance_used_bps 2500');
    expect(body).toContain('modelmesh_instance_lru_age_seconds 10');
    expect(body).not.toContain('modelId=');
  });

  test('per-model labels only when asked for', async () => {
    const metrics = MeshMetrics.create({ perModel: true, instance, mesh: () => undefined });
    metrics.call({ method: 'a.B/C', code: 0, ms: 1, requestBytes: 1, responseBytes: 1, destination: 'peer', modelId: 'm1', vModelId: 'v1' });
    metrics.load('m1', { queueMs: 2, loadMs: 30, ok: true, sizeBytes: 4096 });
    const { body } = await metrics.scrape();
    expect(body).toContain('modelmesh_api_request_milliseconds_count{method="C",code="OK",modelId="m1",vModelId="v1"} 1');
    expect(body).toContain('modelmesh_loadmodel_milliseconds_count{modelId="m1",vModelId=""} 1');
  });

  test('the leader-only gauges are zero on other instances and set on the leader', async () => {
    let leader = false;
    const counts = { modelsLoaded: 7, modelsWithFailure: 1, modelsManaged: 9 };
    const metrics = MeshMetrics.create({ perModel: false, instance, mesh: () => (leader ? counts : undefined) });
    expect((await metrics.scrape()).body).toContain('modelmesh_models_managed_total 0');
    leader = true;
    const { body } = await metrics.scrape();
    expect(body).toContain('modelmesh_models_loaded_total 7');
    expect(body).toContain('modelmesh_models_with_failure_total 1');
    expect(body).toContain('modelmesh_models_managed_total 9');
  });

  test('failed loads and unloads count as failures, not as durations', async () => {
    const metrics = MeshMetrics.create({ perModel: false, instance, mesh: () => undefined });
    metrics.load('m', { queueMs: 1, loadMs: 5, ok: false });
    metrics.unload('m', 3, false);
    const { body } = await metrics.scrape();
    expect(body).toContain('modelmesh_loadmodel_failure 1');
    expect(body).toContain('modelmesh_unloadmodel_failure 1');
    expect(body).toContain('modelmesh_loadmodel_milliseconds_count 0');
    expect(body).toContain('modelmesh_loading_queue_delay_milliseconds_count 1');
  });

  test('disabled records nothing and serves nothing', async () => {
    const metrics = MeshMetrics.disabled();
    metrics.call({ method: 'a.B/C', code: 0, ms: 1, requestBytes: 1, responseBytes: 1, destination: 'local' });
    expect(metrics.registry).toBeUndefined();
    expect((await metrics.scrape()).body).toBe('');
  });

  test('code names follow grpc', () => {
    expect([codeName(0), codeName(4), codeName(14), codeName(99)]).toEqual(['OK', 'DEADLINE_EXCEEDED', 'UNAVAILABLE', '99']);
  });
});
