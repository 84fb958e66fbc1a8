import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withCleanup } from './lib/cleanup';
import { BenchCluster, residentBytes } from './lib/cluster';
import { exampleRequest, expectAnswer, inferenceClient, modelInfer, modelMetadata } from './lib/infer';
import { LoopPeriod, LoopSummary, closedLoop, forEachConcurrently, openLoop, summarize } from './lib/load';
import { registerModels } from './lib/models';
import {
  Check, MachineInfo, ScenarioOptions, ScenarioResult, check, checkLine, formatTable, integer, machineInfo, machineLine, ratio,
} from './lib/report';
import { lineChart } from './lib/svg-chart';
import { GRPCInferenceServiceClient } from '../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../proto/gen/model-mesh';
import { callMesh } from '../test/harness/modelmesh';

/**
 * Many models: N registered through the API into real etcd, M of them loaded across the two instances, then calls
 * to random loaded models, open loop at a fixed rate and closed loop at high concurrency, through the mesh and
 * straight to the runtime holding each model (the baseline), plus each mesh's memory per registered and loaded model.
 */

const SIZES = {
  /** settleMs lets the meshes apply the last watch events and collect garbage before their memory is read. */
  full: { registered: 100_000, loaded: 40_000, openMs: 20_000, warmupMs: 2_000, measureMs: 8_000, slices: 4, settleMs: 3_000 },
  quick: { registered: 2_000, loaded: 1_000, openMs: 2_000, warmupMs: 300, measureMs: 1_000, slices: 1, settleMs: 500 },
} as const;
/** Calls in flight while registering and loading. */
const SETUP_CONCURRENCY = 64;
const OPEN_RATE_PER_SECOND = 1_000;
const CONCURRENCIES = [64, 512] as const;
/** Bytes every example model reports: small, so both runtimes have room for every loaded model and nothing is evicted. */
const MODEL_SIZE = 1_024;
const MODEL_TEXT = 'density: ';
const INPUT = 'x';

/** The issue's targets. */
const MAX_OPEN_P99_US = 5_000;
const MIN_THROUGHPUT_RATIO = 0.6;
const MAX_BYTES_PER_REGISTERED = 1_024;

type TargetName = 'direct' | 'holder' | 'any';

const TARGETS: ReadonlyArray<{ readonly name: TargetName; readonly label: string }> = [
  { name: 'direct', label: 'direct to the runtime holding it' },
  { name: 'holder', label: 'mesh holding the copy' },
  { name: 'any', label: 'either mesh (half peer hops)' },
];

interface Row {
  readonly target: TargetName;
  /** 'open' for the fixed-rate run, else the closed loop's concurrency. */
  readonly load: 'open' | number;
  readonly result: LoopSummary;
  readonly throughputRatio: number;
}

interface Memory {
  readonly instance: string;
  readonly emptyBytes: number;
  readonly registeredBytes: number;
  readonly loadedBytes: number;
  readonly copies: number;
  readonly perRegisteredBytes: number;
  readonly perLoadedBytes: number;
}

export async function density(options: ScenarioOptions): Promise<ScenarioResult> {
  const { progress } = options;
  const size = options.quick ? SIZES.quick : SIZES.full;
  const machine = machineInfo();
  const cluster = new BenchCluster({
    name: 'density',
    meshMetrics: options.meshMetrics,
    runtimeFlags: ['--model-size', String(MODEL_SIZE), '--capacity', String(2 * size.loaded * MODEL_SIZE), '--max-loading-concurrency', '16'],
    // Every call is to a model loaded once: no scale-out copy may change where the calls go while we measure.
    meshEnv: { MM_SCALEUP_RPM_THRESHOLD: '10000000' },
  });
  return withCleanup(() => cluster.stop(), async () => {
    progress('density: starting etcd, 2 example runtimes and 2 meshes');
    await cluster.start();
    const { meshes, runtimes } = cluster;
    const rss = () => meshes.map((m) => residentBytes(m.process.pid));
    const path = cluster.modelFile('model', MODEL_TEXT);
    await sleep(size.settleMs);
    const emptyBytes = rss();

    progress(`density: registering ${size.registered} models`);
    const idOf = (i: number) => `model-${i}`;
    const registration = summarize([await registerModels(meshes, size.registered, SETUP_CONCURRENCY, idOf, path)]);
    progress(`density: ${integer(registration.callsPerSecond)} registrations/s, ${registration.errors} errors`);
    await sleep(size.settleMs);
    const registeredBytes = rss();

    // Model i is loaded on mesh i % 2 (mm-balanced: the receiving instance loads it itself when it has room).
    progress(`density: loading ${size.loaded} models`);
    const holder = new Int8Array(size.loaded).fill(-1);
    const loading = summarize([await forEachConcurrently(size.loaded, SETUP_CONCURRENCY, async (i) => {
      const status = await callMesh(meshes[i % 2].client, 'ensureLoaded', { modelId: idOf(i), sync: true }, { 'mm-balanced': 'true' });
      const copies = status.modelCopyInfos.map((c) => c.location);
      if (status.status !== ModelStatus.LOADED || copies.length !== 1) {
        throw new Error(`${idOf(i)} is ${ModelStatus[status.status]} on [${copies.join(', ')}], not loaded once`);
      }
      holder[i] = meshes.findIndex((m) => m.instanceId === copies[0]);
    })]);
    progress(`density: ${integer(loading.callsPerSecond)} loads/s, ${loading.errors} errors`);
    await sleep(size.settleMs);
    const loadedBytes = rss();
    const copies = [0, 1].map((m) => holder.filter((h) => h === m).length);
    const memory: Memory[] = meshes.map((mesh, m) => ({
      instance: mesh.instanceId,
      emptyBytes: emptyBytes[m],
      registeredBytes: registeredBytes[m],
      loadedBytes: loadedBytes[m],
      copies: copies[m],
      perRegisteredBytes: (registeredBytes[m] - emptyBytes[m]) / size.registered,
      perLoadedBytes: (loadedBytes[m] - registeredBytes[m]) / copies[m],
    }));

    const loaded = [...holder.keys()].filter((i) => holder[i] >= 0);
    const request = exampleRequest(INPUT);
    const metadata = loaded.map((i) => modelMetadata(idOf(i)));
    const runtimeClients = runtimes.map((r) => cluster.track(inferenceClient(r.port)));
    const meshClients = meshes.map((m) => cluster.track(inferenceClient(m.grpcPort)));
    const pick = () => Math.floor(Math.random() * loaded.length);
    const clientFor: Record<TargetName, (k: number) => GRPCInferenceServiceClient> = {
      direct: (k) => runtimeClients[holder[loaded[k]]],
      holder: (k) => meshClients[holder[loaded[k]]],
      any: () => meshClients[Math.random() < 0.5 ? 0 : 1],
    };
    const call = (target: TargetName) => async () => {
      const k = pick();
      await modelInfer(clientFor[target](k), request, metadata[k]);
    };
    for (const target of TARGETS) {
      for (const k of [0, loaded.length - 1]) await expectAnswer(clientFor[target.name](k), request, metadata[k], MODEL_TEXT + INPUT, target.label);
    }

    const rows: Row[] = [];
    const addRows = (load: Row['load'], measured: ReadonlyMap<TargetName, LoopPeriod[]>) => {
      const direct = summarize(measured.get('direct')!);
      for (const target of TARGETS) {
        const result = summarize(measured.get(target.name)!);
        rows.push({ target: target.name, load, result, throughputRatio: result.callsPerSecond / direct.callsPerSecond });
        progress(`density: ${target.name} ${load === 'open' ? `open loop ${OPEN_RATE_PER_SECOND}/s` : `c=${load}`}: p50 ${integer(result.p50Us)} µs,`
          + ` p99 ${integer(result.p99Us)} µs, ${integer(result.callsPerSecond)} calls/s, ${result.errors} errors`);
      }
    };

    progress(`density: open loop at ${OPEN_RATE_PER_SECOND} calls/s over ${loaded.length} loaded models`);
    const open = new Map<TargetName, LoopPeriod[]>(TARGETS.map((t) => [t.name, []]));
    for (const target of TARGETS) await openLoop(call(target.name), OPEN_RATE_PER_SECOND, size.warmupMs);
    for (let slice = 0; slice < size.slices; slice++) {
      for (const target of TARGETS) open.get(target.name)!.push(await openLoop(call(target.name), OPEN_RATE_PER_SECOND, size.openMs / size.slices));
    }
    addRows('open', open);

    for (const concurrency of CONCURRENCIES) {
      progress(`density: closed loop at concurrency ${concurrency}`);
      for (const target of TARGETS) await closedLoop(call(target.name), concurrency, size.warmupMs);
      // Targets take turns in short slices, so load from anything else on the machine falls on all of them alike.
      const measured = new Map<TargetName, LoopPeriod[]>(TARGETS.map((t) => [t.name, []]));
      for (let slice = 0; slice < size.slices; slice++) {
        for (const target of TARGETS) measured.get(target.name)!.push(await closedLoop(call(target.name), concurrency, size.measureMs / size.slices));
      }
      addRows(concurrency, measured);
    }

    const problems: string[] = [];
    if (registration.errors > 0) problems.push(`${registration.errors} registrations failed (first: ${registration.firstError})`);
    if (loading.errors > 0) problems.push(`${loading.errors} loads failed (first: ${loading.firstError})`);
    for (const row of rows) {
      if (row.result.errors > 0) problems.push(`${row.target} ${row.load}: ${row.result.errors} failed calls (first: ${row.result.firstError})`);
    }

    const checks = checksOf(rows, memory, loaded.length, size.loaded);
    const loadAverageEnd = machineInfo().loadAverage;
    const chartFile = options.chartDir ? writeCharts(options.chartDir, rows, memory, size.registered) : [];
    return {
      scenario: 'density',
      valid: problems.length === 0,
      problems,
      table: render({
        rows, memory, checks, problems, machine, loadAverageEnd, registration, loading, size, quick: options.quick, charts: chartFile,
      }),
      data: {
        quick: options.quick,
        registered: size.registered,
        loadedRequested: size.loaded,
        loaded: loaded.length,
        modelSizeBytes: MODEL_SIZE,
        openRatePerSecond: OPEN_RATE_PER_SECOND,
        openMs: size.openMs,
        warmupMs: size.warmupMs,
        measureMs: size.measureMs,
        slices: size.slices,
        registration,
        loading,
        memory,
        rows: rows.map((row) => ({ target: row.target, load: row.load, ...row.result, throughputRatio: row.throughputRatio })),
        charts: chartFile,
        machine,
        loadAverageEnd,
        checks,
      },
    };
  });
}

function checksOf(rows: readonly Row[], memory: readonly Memory[], loaded: number, requested: number): Check[] {
  const row = (target: TargetName, load: Row['load']) => rows.find((r) => r.target === target && r.load === load)!;
  const worstPerRegistered = Math.max(...memory.map((m) => m.perRegisteredBytes));
  return [
    check('models loaded across the 2 instances', loaded, 'at least', requested, 'models'),
    check(`open loop p99 at ${OPEN_RATE_PER_SECOND}/s, either mesh`, row('any', 'open').result.p99Us / 1_000, 'at most', MAX_OPEN_P99_US / 1_000, 'ms'),
    check('closed loop c=512 errors, either mesh', row('any', 512).result.errors, 'at most', 0, 'errors'),
    check('closed loop c=512 throughput, either mesh', row('any', 512).throughputRatio, 'at least', MIN_THROUGHPUT_RATIO, 'x direct'),
    check('closed loop c=512 throughput, mesh holding the copy', row('holder', 512).throughputRatio, 'at least', MIN_THROUGHPUT_RATIO, 'x direct'),
    check('mesh RSS per registered model (worst instance)', worstPerRegistered, 'at most', MAX_BYTES_PER_REGISTERED, 'bytes'),
  ];
}

/** Latency against load and memory against models, as SVG files in `dir`; returns their paths. */
function writeCharts(dir: string, rows: readonly Row[], memory: readonly Memory[], registered: number): string[] {
  const latency = lineChart({
    title: 'density: closed-loop p50 and p99 latency vs concurrency',
    xLabel: 'concurrent calls',
    yLabel: 'latency (ms)',
    series: TARGETS.flatMap((t) => (['p50Us', 'p99Us'] as const).map((field) => ({
      name: `${t.label} ${field === 'p50Us' ? 'p50' : 'p99'}`,
      dashed: field === 'p99Us',
      points: rows.filter((r) => r.target === t.name && r.load !== 'open').map((r) => ({ x: r.load as number, y: r.result[field] / 1_000 })),
    }))),
  });
  const memoryChart = lineChart({
    title: 'density: mesh resident memory vs models',
    xLabel: 'models registered, then copies loaded on this instance',
    yLabel: 'RSS (MiB)',
    series: memory.map((m) => ({
      name: m.instance,
      points: [
        { x: 0, y: m.emptyBytes / 2 ** 20 },
        { x: registered, y: m.registeredBytes / 2 ** 20 },
        { x: registered + m.copies, y: m.loadedBytes / 2 ** 20 },
      ],
    })),
  });
  const files = [join(dir, 'density-latency.svg'), join(dir, 'density-memory.svg')];
  writeFileSync(files[0], latency);
  writeFileSync(files[1], memoryChart);
  return files;
}

interface RenderInput {
  readonly rows: readonly Row[];
  readonly memory: readonly Memory[];
  readonly checks: readonly Check[];
  readonly problems: readonly string[];
  readonly machine: MachineInfo;
  readonly loadAverageEnd: readonly number[];
  readonly registration: LoopSummary;
  readonly loading: LoopSummary;
  readonly size: (typeof SIZES)[keyof typeof SIZES];
  readonly quick: boolean;
  readonly charts: readonly string[];
}

function render({ rows, memory, checks, problems, machine, loadAverageEnd, registration, loading, size, quick, charts }: RenderInput): string {
  const labelOf = (name: TargetName) => TARGETS.find((t) => t.name === name)!.label;
  const calls = formatTable([
    { title: 'target', align: 'left' },
    { title: 'load', align: 'left' },
    { title: 'calls' },
    { title: 'errors' },
    { title: 'p50 µs' },
    { title: 'p99 µs' },
    { title: 'max µs' },
    { title: 'calls/s' },
    { title: 'calls/s vs direct' },
  ], rows.map((row) => [
    labelOf(row.target),
    row.load === 'open' ? `open ${OPEN_RATE_PER_SECOND}/s` : `closed c=${row.load}`,
    String(row.result.calls),
    String(row.result.errors),
    integer(row.result.p50Us),
    integer(row.result.p99Us),
    integer(row.result.maxUs),
    integer(row.result.callsPerSecond),
    row.target === 'direct' ? '(baseline)' : ratio(row.throughputRatio),
  ]));
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const mem = formatTable([
    { title: 'instance', align: 'left' },
    { title: 'RSS empty MiB' },
    { title: `RSS ${size.registered} registered MiB` },
    { title: 'copies here' },
    { title: 'RSS loaded MiB' },
    { title: 'bytes/registered' },
    { title: 'bytes/loaded' },
  ], memory.map((m) => [
    m.instance, mib(m.emptyBytes), mib(m.registeredBytes), String(m.copies), mib(m.loadedBytes),
    integer(m.perRegisteredBytes), integer(m.perLoadedBytes),
  ]));
  return [
    `Registered ${registration.calls} models at ${integer(registration.callsPerSecond)}/s and loaded ${loading.calls} at`
      + ` ${integer(loading.callsPerSecond)}/s (${SETUP_CONCURRENCY} calls in flight); each call picks a loaded model at random.`,
    '',
    calls,
    '',
    `Open loop: ${OPEN_RATE_PER_SECOND} calls/s for ${size.openMs / 1_000} s per target, latency from each call's scheduled start.`
      + ` Closed loop: ${size.warmupMs / 1_000} s warm-up, then ${size.measureMs / 1_000} s measured; both in ${size.slices} slices`
      + ' taking turns between targets. One grpc-js channel per process called.',
    '',
    mem,
    '',
    `bytes/registered = (RSS registered - RSS empty) / ${size.registered}; bytes/loaded = (RSS loaded - RSS registered) / copies here.`,
    ...(charts.length ? [`Charts: ${charts.join(', ')}`] : []),
    ...(quick ? ['--quick: a smoke run, not figures to quote.'] : []),
    machineLine(machine, loadAverageEnd, 'The client, 2 meshes, 2 example runtimes and etcd'),
    '',
    ...checks.map((c) => checkLine(c)),
    ...(problems.length ? ['', 'INVALID measurement:', ...problems.map((p) => `  - ${p}`)] : []),
  ].join('\n');
}
