import { randomBytes } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import { withCleanup } from './lib/cleanup';
import { BenchCluster } from './lib/cluster';
import { CALL_DEADLINE_MS, exampleRequest, expectAnswer, inferenceClient, modelInfer, modelMetadata } from './lib/infer';
import { Call, LoopPeriod, LoopSummary, closedLoop, summarize } from './lib/load';
import {
  Check, MachineInfo, ScenarioOptions, ScenarioResult, check, checkLine, formatTable, integer, machineInfo, machineLine, ratio, signedInteger,
} from './lib/report';
import { GRPCInferenceServiceClient, ModelInferRequest } from '../proto/gen/grpc_predict_v2';
import { ModelStatusInfo, ModelStatusInfo_ModelStatus as ModelStatus } from '../proto/gen/model-mesh';
import { ExampleRuntimeHandle, MeshHandle, callMesh } from '../test/harness/modelmesh';
import { waitFor } from '../test/harness/wait';

/**
 * Routing overhead: the same ModelInfer call sent straight to a runtime (the baseline), through a TCP relay that
 * parses nothing (what any hop costs here), through the mesh instance that holds the model's copy, and through
 * another instance that forwards it there (one peer hop), each at concurrency 1 and 64, all measured in one run on
 * one machine.
 */

/** Per target and concurrency: warm-up, then the measured time split into slices that alternate between targets. */
const PERIODS = {
  full: { warmupMs: 2_000, measureMs: 8_000, slices: 4 },
  quick: { warmupMs: 500, measureMs: 2_000, slices: 2 },
} as const;
const CONCURRENCIES = [1, 64] as const;
const PLACEMENT_ATTEMPTS = 5;
const MODEL_TEXT = 'bench: ';
const INPUT = 'x';

/** The data-plane issue's targets for the local-copy route. */
const LOCAL_P50_DELTA_LIMIT_US = 250;
const LOCAL_THROUGHPUT_RATIO_MIN = 0.6;

type TargetName = 'direct' | 'tcp-relay' | 'local-copy' | 'peer-hop';

interface Target {
  readonly name: TargetName;
  readonly label: string;
  readonly port: number;
}

interface Row {
  readonly target: TargetName;
  readonly concurrency: number;
  readonly result: LoopSummary;
  /** p50 minus the direct row's p50 at the same concurrency. */
  readonly p50DeltaUs: number;
  /** calls/s divided by the direct row's calls/s at the same concurrency. */
  readonly throughputRatio: number;
}

export async function routing(options: ScenarioOptions): Promise<ScenarioResult> {
  const { progress } = options;
  const periods = options.quick ? PERIODS.quick : PERIODS.full;
  const machine = machineInfo();
  // Keep the topology fixed while we measure: no scale-out copy may turn the peer hop into a local call.
  const cluster = new BenchCluster({ name: 'routing', meshMetrics: options.meshMetrics, meshEnv: { MM_SCALEUP_RPM_THRESHOLD: '10000000' } });
  return withCleanup(() => cluster.stop(), async () => {
    progress('routing: starting etcd, 2 example runtimes and 2 meshes');
    await cluster.start();
    const { runtimes, meshes } = cluster;

    const modelId = await placeOnFirstMesh(cluster, progress);
    progress(`routing: model ${modelId} has its only copy on mesh-0`);

    const targets = targetsOf(runtimes[0], await cluster.startTcpRelay('tcp-relay', runtimes[0].port), meshes);
    const request = exampleRequest(INPUT);
    const metadata = modelMetadata(modelId);

    const calls = new Map<TargetName, Call>();
    for (const target of targets) {
      const client = cluster.track(inferenceClient(target.port));
      await expectAnswer(client, request, metadata, MODEL_TEXT + INPUT, target.label);
      calls.set(target.name, inferCall(client, request, metadata));
    }

    const rows: Row[] = [];
    for (const concurrency of CONCURRENCIES) {
      for (const target of targets) await closedLoop(calls.get(target.name)!, concurrency, periods.warmupMs);
      // Targets take turns in short slices, so load from anything else on the machine falls on all of them alike.
      const measured = new Map<TargetName, LoopPeriod[]>(targets.map((t) => [t.name, []]));
      for (let slice = 0; slice < periods.slices; slice++) {
        for (const target of targets) {
          measured.get(target.name)!.push(await closedLoop(calls.get(target.name)!, concurrency, periods.measureMs / periods.slices));
        }
      }
      const direct = summarize(measured.get('direct')!);
      for (const target of targets) {
        const result = summarize(measured.get(target.name)!);
        rows.push({
          target: target.name,
          concurrency,
          result,
          p50DeltaUs: result.p50Us - direct.p50Us,
          throughputRatio: result.callsPerSecond / direct.callsPerSecond,
        });
        progress(`routing: ${target.name} c=${concurrency}: p50 ${integer(result.p50Us)} µs, p99 ${integer(result.p99Us)} µs, `
          + `${integer(result.callsPerSecond)} calls/s, ${result.errors} errors`);
      }
    }

    const problems: string[] = [];
    for (const row of rows) {
      if (row.result.errors > 0) {
        problems.push(`${row.target} c=${row.concurrency}: ${row.result.errors} failed calls (first: ${row.result.firstError})`);
      }
    }
    const copiesAfter = copyLocations(await callMesh(meshes[0].client, 'getModelStatus', { modelId }));
    if (copiesAfter.join(',') !== 'mesh-0') problems.push(`the model's copies moved during the run: now on [${copiesAfter.join(', ')}]`);

    const checks = checksOf(rows);
    const loadAverageEnd = machineInfo().loadAverage;
    return {
      scenario: 'routing',
      valid: problems.length === 0,
      problems,
      table: render({ rows, targets, checks, problems, machine, loadAverageEnd, periods, quick: options.quick, meshMetrics: options.meshMetrics }),
      data: {
        quick: options.quick,
        meshMetrics: options.meshMetrics,
        warmupMs: periods.warmupMs,
        measureMs: periods.measureMs,
        slices: periods.slices,
        callDeadlineMs: CALL_DEADLINE_MS,
        modelId,
        machine,
        loadAverageEnd,
        rows: rows.map((row) => ({
          target: row.target,
          concurrency: row.concurrency,
          ...row.result,
          p50DeltaUs: row.p50DeltaUs,
          throughputRatio: row.throughputRatio,
        })),
        checks,
      },
    };
  });
}

function targetsOf(runtime: ExampleRuntimeHandle, relayPort: number, meshes: readonly MeshHandle[]): Target[] {
  return [
    { name: 'direct', label: 'direct to runtime-0', port: runtime.port },
    { name: 'tcp-relay', label: 'TCP relay -> runtime-0', port: relayPort },
    { name: 'local-copy', label: 'mesh-0 (local copy)', port: meshes[0].grpcPort },
    { name: 'peer-hop', label: 'mesh-1 -> mesh-0 (peer hop)', port: meshes[1].grpcPort },
  ];
}

/**
 * Registers and loads a model with `mm-balanced: true` on mesh-0, which places it there; when placement chose
 * otherwise, tries again under a new id. Then waits until mesh-1 also sees that copy, so its first call is a
 * forward, not a load of its own.
 */
async function placeOnFirstMesh(cluster: BenchCluster, progress: (line: string) => void): Promise<string> {
  const { meshes } = cluster;
  const suffix = randomBytes(3).toString('hex');
  for (let attempt = 1; attempt <= PLACEMENT_ATTEMPTS; attempt++) {
    const modelId = `routing-${suffix}-${attempt}`;
    const path = cluster.modelFile(modelId, MODEL_TEXT);
    await callMesh(meshes[0].client, 'registerModel', { modelId, modelInfo: { type: 'example', path, key: '' }, loadNow: true, sync: true },
      { 'mm-balanced': 'true' });
    const status = await callMesh(meshes[0].client, 'getModelStatus', { modelId });
    const copies = copyLocations(status);
    if (status.status === ModelStatus.LOADED && copies.join(',') === 'mesh-0') {
      await waitFor(`mesh-1 to see ${modelId} loaded on mesh-0`, async () => {
        const seen = await callMesh(meshes[1].client, 'getModelStatus', { modelId });
        return seen.status === ModelStatus.LOADED && copyLocations(seen).join(',') === 'mesh-0';
      }, { timeoutMs: 10_000 });
      return modelId;
    }
    progress(`routing: ${modelId} is ${ModelStatus[status.status]} on [${copies.join(', ')}], not only on mesh-0; trying a new id`);
    await callMesh(meshes[0].client, 'unregisterModel', { modelId }).catch(() => undefined);
  }
  throw new Error(`could not place a model on mesh-0 alone in ${PLACEMENT_ATTEMPTS} attempts`);
}

/** Instances holding a copy in any state, sorted. */
function copyLocations(status: ModelStatusInfo): string[] {
  return status.modelCopyInfos.map((copy) => copy.location).sort();
}

function inferCall(client: GRPCInferenceServiceClient, request: ModelInferRequest, metadata: Metadata): Call {
  return async () => {
    await modelInfer(client, request, metadata);
  };
}

function checksOf(rows: readonly Row[]): Check[] {
  const local = (concurrency: number) => rows.find((r) => r.target === 'local-copy' && r.concurrency === concurrency)!;
  const delta = local(1).p50DeltaUs;
  const throughput = local(64).throughputRatio;
  return [
    check('local-copy p50 added at c=1', delta, 'at most', LOCAL_P50_DELTA_LIMIT_US, 'µs'),
    check('local-copy throughput at c=64', throughput, 'at least', LOCAL_THROUGHPUT_RATIO_MIN, 'x direct'),
  ];
}

interface RenderInput {
  readonly rows: readonly Row[];
  readonly targets: readonly Target[];
  readonly checks: readonly Check[];
  readonly problems: readonly string[];
  readonly machine: MachineInfo;
  readonly loadAverageEnd: readonly number[];
  readonly periods: { readonly warmupMs: number; readonly measureMs: number; readonly slices: number };
  readonly quick: boolean;
  readonly meshMetrics: boolean;
}

function render({ rows, targets, checks, problems, machine, loadAverageEnd, periods, quick, meshMetrics }: RenderInput): string {
  const labelOf = (name: TargetName) => targets.find((t) => t.name === name)!.label;
  const table = formatTable([
    { title: 'target', align: 'left' },
    { title: 'conc' },
    { title: 'calls' },
    { title: 'errors' },
    { title: 'p50 µs' },
    { title: 'p99 µs' },
    { title: 'calls/s' },
    { title: 'p50 vs direct µs' },
    { title: 'calls/s vs direct' },
  ], rows.map((row) => [
    labelOf(row.target),
    String(row.concurrency),
    String(row.result.calls),
    String(row.result.errors),
    integer(row.result.p50Us),
    integer(row.result.p99Us),
    integer(row.result.callsPerSecond),
    row.target === 'direct' ? '(baseline)' : signedInteger(row.p50DeltaUs),
    row.target === 'direct' ? '(baseline)' : ratio(row.throughputRatio),
  ]));
  const lines = [
    table,
    '',
    `Closed loop, one grpc-js channel per target; each row: ${periods.warmupMs / 1_000} s warm-up, then ${periods.measureMs / 1_000} s measured`
      + ` in ${periods.slices} slices taking turns with the other targets`
      + `${quick ? ' (--quick: a smoke run, not figures to quote)' : ''}.`,
    'Ratios and deltas are against the direct row at the same concurrency, measured in this run.',
    'The TCP relay is a process that pipes bytes to runtime-0 and parses nothing: the cheapest hop any proxy could be here.',
    `The meshes ${meshMetrics ? 'serve Prometheus metrics and record every call, as in production' : 'run with metrics off (--metrics off)'}.`,
    machineLine(machine, loadAverageEnd, 'The client, 2 meshes, 2 example runtimes and etcd'),
    '',
    ...checks.map((c) => checkLine(c, c.unit === 'µs' ? signedInteger : (n) => n.toFixed(2))),
    ...(problems.length ? ['', 'INVALID measurement:', ...problems.map((p) => `  - ${p}`)] : []),
  ];
  return lines.join('\n');
}
