import { Metadata, credentials } from '@grpc/grpc-js';
import { withCleanup } from './lib/cleanup';
import { BenchCluster } from './lib/cluster';
import { CALL_DEADLINE_MS, exampleRequest, expectAnswer, inferenceClient, modelMetadata } from './lib/infer';
import { LoopSummary, summarize } from './lib/load';
import { EXAMPLE_TYPE, registerModels } from './lib/models';
import { ScenarioOptions, ScenarioResult, check, checkLine, formatTable, integer, machineInfo, machineLine, signedInteger } from './lib/report';
import { LoadModelRequest, ModelRuntimeClient } from '../proto/gen/model-runtime';
import { callMesh } from '../test/harness/modelmesh';

/**
 * The mesh's overhead on a cache miss: the first call to a registered model that no instance holds, through the
 * mesh (placement, the runtime's load, the call; the registry's "loaded" follows, and a claim only for a slow
 * load), against the baseline of asking the runtime to load the model itself and then calling it directly. The two
 * alternate model by model, one call at a time, so both see the same machine.
 */

const MISSES = { full: 200, quick: 20 } as const;
const MODEL_TEXT = 'cold: ';
const INPUT = 'x';

/** The target for the p50 overhead. */
const MAX_P50_OVERHEAD_US = 5_000;

export async function coldStart(options: ScenarioOptions): Promise<ScenarioResult> {
  const { progress } = options;
  const misses = options.quick ? MISSES.quick : MISSES.full;
  const machine = machineInfo();
  // Nothing scales out or moves while we measure: each model is loaded once, by its first call.
  const cluster = new BenchCluster({ name: 'cold-start', meshMetrics: options.meshMetrics, meshEnv: { MM_SCALEUP_RPM_THRESHOLD: '10000000' } });
  return withCleanup(() => cluster.stop(), async () => {
    progress('cold-start: starting etcd, 2 example runtimes and 2 meshes');
    await cluster.start();
    const path = cluster.modelFile('model', MODEL_TEXT);
    const meshIdOf = (i: number) => `cold-${i}`;
    const registered = summarize([await registerModels(cluster.meshes, misses, 16, meshIdOf, path)]);
    if (registered.errors > 0) throw new Error(`registering failed: ${registered.firstError}`);

    const runtime = cluster.track(new ModelRuntimeClient(`127.0.0.1:${cluster.runtimes[0].port}`, credentials.createInsecure()));
    const direct = cluster.track(inferenceClient(cluster.runtimes[0].port));
    const mesh = cluster.track(inferenceClient(cluster.meshes[0].grpcPort));
    const request = exampleRequest(INPUT);

    const baselineUs: number[] = [];
    const loadUs: number[] = [];
    const meshUs: number[] = [];
    const storeUs: number[] = [];
    /** The miss's latency by where placement loaded the copy: mesh-0 itself, or mesh-1 (then mesh-0 forwards the call). */
    const byPlacement = new Map<string, number[]>([['mesh-0', []], ['mesh-1', []]]);
    progress(`cold-start: ${misses} first calls through mesh-0, alternating with ${misses} loads + calls straight to runtime-0`);
    for (let i = 0; i < misses; i++) {
      // The baseline's models are unknown to the mesh: ids of their own, unloaded again at once.
      const directId = `direct-${i}`;
      const t0 = performance.now();
      await loadModel(runtime, { modelId: directId, modelType: EXAMPLE_TYPE, modelPath: path, modelKey: '' });
      const t1 = performance.now();
      await expectAnswer(direct, request, modelMetadata(directId), MODEL_TEXT + INPUT, 'runtime-0');
      const t2 = performance.now();
      await unloadModel(runtime, directId);
      loadUs.push((t1 - t0) * 1_000);
      baselineUs.push((t2 - t0) * 1_000);

      const t3 = performance.now();
      await expectAnswer(mesh, request, modelMetadata(meshIdOf(i)), MODEL_TEXT + INPUT, 'mesh-0');
      const t4 = performance.now();
      // For reference: what one store write costs on this machine right now (a slow load's claim would cost that).
      await cluster.etcd3.put('/bench-cold-start/probe').value(String(i));
      meshUs.push((t4 - t3) * 1_000);
      storeUs.push((performance.now() - t4) * 1_000);
      const status = await callMesh(cluster.meshes[0].client, 'getModelStatus', { modelId: meshIdOf(i) });
      byPlacement.get(status.modelCopyInfos[0]?.location ?? '')?.push((t4 - t3) * 1_000);
    }

    const stats = (samples: number[]): LoopSummary =>
      summarize([{ latenciesUs: samples, errors: 0, elapsedMs: samples.reduce((a, b) => a + b, 0) / 1_000 }]);
    const load = stats(loadUs);
    const baseline = stats(baselineUs);
    const viaMesh = stats(meshUs);
    const placed = [...byPlacement].filter(([, samples]) => samples.length > 0).map(([instance, samples]) => [instance, stats(samples)] as const);
    const storeWrite = stats(storeUs);
    const overheadP50 = viaMesh.p50Us - baseline.p50Us;
    const overheadP99 = viaMesh.p99Us - baseline.p99Us;
    progress(`cold-start: baseline p50 ${integer(baseline.p50Us)} µs, mesh miss p50 ${integer(viaMesh.p50Us)} µs`);

    const checks = [check('cache-miss overhead p50 (mesh miss minus runtime load + direct call)', overheadP50 / 1_000, 'at most', MAX_P50_OVERHEAD_US / 1_000, 'ms')];
    const loadAverageEnd = machineInfo().loadAverage;
    const rows: Array<[string, LoopSummary]> = [
      ['runtime-0 loadModel alone', load],
      ['runtime-0 loadModel + first call (baseline)', baseline],
      ['first call through mesh-0 (cache miss)', viaMesh],
      ...placed.map(([instance, s]): [string, LoopSummary] => [`  of which loaded on ${instance}`, s]),
      ['etcd put, for reference', storeWrite],
    ];
    const table = formatTable([
      { title: 'what', align: 'left' },
      { title: 'samples' },
      { title: 'p50 µs' },
      { title: 'p99 µs' },
      { title: 'max µs' },
      { title: 'p50 vs baseline µs' },
    ], rows.map(([what, s]) => [what, String(s.calls), integer(s.p50Us), integer(s.p99Us), integer(s.maxUs),
      s === baseline ? '(baseline)' : s === load || s === storeWrite ? '' : signedInteger(s.p50Us - baseline.p50Us)]));
    const lines = [
      table,
      '',
      'One call at a time; the example runtime loads with no artificial delay (its load is reading the model file).'
        + ` p99 overhead: ${signedInteger(overheadP99)} µs. Placement loads the copy on mesh-0, the instance called, while it`
        + ' has room; a copy placed on mesh-1 would be loaded there and the call forwarded to it.',
      ...(options.quick ? ['--quick: a smoke run, not figures to quote.'] : []),
      machineLine(machine, loadAverageEnd, 'The client, 2 meshes, 2 example runtimes and etcd'),
      '',
      ...checks.map((c) => checkLine(c)),
    ];
    return {
      scenario: 'cold-start',
      valid: true,
      problems: [],
      table: lines.join('\n'),
      data: {
        quick: options.quick,
        misses,
        runtimeLoad: load,
        baseline,
        mesh: viaMesh,
        meshByPlacement: Object.fromEntries(placed),
        storeWrite,
        overheadP50Us: overheadP50,
        overheadP99Us: overheadP99,
        machine,
        loadAverageEnd,
        checks,
      },
    };
  });
}

function loadModel(client: ModelRuntimeClient, request: LoadModelRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    client.loadModel(request, new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (err) => (err ? reject(err) : resolve()));
  });
}

function unloadModel(client: ModelRuntimeClient, modelId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.unloadModel({ modelId }, new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (err) => (err ? reject(err) : resolve()));
  });
}
