import { setTimeout as sleep } from 'node:timers/promises';
import { withCleanup } from './lib/cleanup';
import { BenchCluster } from './lib/cluster';
import { LoopSummary, forEachConcurrently, summarize } from './lib/load';
import { EXAMPLE_TYPE, registerModels } from './lib/models';
import { ScenarioOptions, ScenarioResult, check, checkLine, figure, formatTable, integer, machineInfo, machineLine, ratio } from './lib/report';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../proto/gen/model-mesh';
import { callMesh } from '../test/harness/modelmesh';

/**
 * Registration at scale: registerModel through the two meshes into real etcd, against the baseline of putting the
 * same record straight into etcd at the same concurrency; etcd writes per registration; and how long a mesh takes
 * to be ready again when it restarts into a store holding every one of those records.
 */

const COUNTS = { full: 100_000, quick: 2_000 } as const;
/** The baseline's rate settles long before this many puts; more would only lengthen the run. */
const BASELINE_MAX = 20_000;
/** Calls in flight, shared by all clients (half to each mesh). */
const CONCURRENCY = 64;
/** How long the store is watched idle to learn its background write rate (instance records, leases). */
const IDLE_MS = { full: 3_000, quick: 1_000 } as const;

const MIN_MODELS_PER_SECOND = 2_000;
const MAX_RESTART_MS = 10_000;

interface Row {
  readonly what: string;
  readonly result: LoopSummary;
  /** Store revisions per registered model, background writes subtracted. */
  readonly writesPerModel: number;
}

export async function registration(options: ScenarioOptions): Promise<ScenarioResult> {
  const { progress } = options;
  const count = options.quick ? COUNTS.quick : COUNTS.full;
  const machine = machineInfo();
  const cluster = new BenchCluster({ name: 'registration', meshMetrics: options.meshMetrics, timedStart: true });
  return withCleanup(() => cluster.stop(), async () => {
    progress('registration: starting etcd, 2 example runtimes and 2 meshes');
    await cluster.start();
    const path = cluster.modelFile('model', 'registration: ');

    const idleStart = await cluster.revision();
    const idleMs = options.quick ? IDLE_MS.quick : IDLE_MS.full;
    await sleep(idleMs);
    const backgroundPerMs = ((await cluster.revision()) - idleStart) / idleMs;

    const measure = async (what: string, n: number, run: () => ReturnType<typeof forEachConcurrently>): Promise<Row> => {
      const before = await cluster.revision();
      const period = await run();
      const writes = (await cluster.revision()) - before - backgroundPerMs * period.elapsedMs;
      const result = summarize([period]);
      progress(`registration: ${what}: ${integer(result.callsPerSecond)}/s, p99 ${integer(result.p99Us)} µs, ${result.errors} errors`);
      return { what, result, writesPerModel: writes / n };
    };

    const baselineCount = Math.min(count, BASELINE_MAX);
    progress(`registration: baseline, ${baselineCount} puts straight to etcd`);
    const record = JSON.stringify({ type: EXAMPLE_TYPE, path, copies: {}, failures: {}, refs: 0, autoDelete: false, lastUsed: Date.now() });
    const baselinePrefix = '/bench-registration-baseline/registry/';
    const baseline = await measure('etcd put (baseline)', baselineCount,
      () => forEachConcurrently(baselineCount, CONCURRENCY, async (i) => { await cluster.etcd3.put(`${baselinePrefix}model-${i}`).value(record); }));
    // Outside the meshes' namespace either way; deleted so the store holds what the meshes wrote alone.
    await cluster.etcd3.delete().prefix(baselinePrefix);

    progress(`registration: ${count} registerModel calls through the meshes`);
    const idOf = (i: number) => `model-${i}`;
    const mesh = await measure('registerModel via meshes', count, () => registerModels(cluster.meshes, count, CONCURRENCY, idOf, path));

    progress(`registration: restarting mesh-1 into a store with ${count} models`);
    const restartMs = await cluster.restartMesh(1);
    const probe = idOf(count - 1);
    const seen = await callMesh(cluster.meshes[1].client, 'getModelStatus', { modelId: probe });
    const problems: string[] = [];
    for (const row of [baseline, mesh]) {
      if (row.result.errors > 0) problems.push(`${row.what}: ${row.result.errors} failed calls (first: ${row.result.firstError})`);
    }
    if (seen.status !== ModelStatus.NOT_LOADED) problems.push(`after the restart, ${probe} reads ${ModelStatus[seen.status]}, not NOT_LOADED`);

    const checks = [
      check(`registerModel throughput (${CONCURRENCY} concurrent calls)`, mesh.result.callsPerSecond, 'at least', MIN_MODELS_PER_SECOND, 'models/s'),
      check(`mesh restart with ${count} records, spawn to ready`, restartMs, 'at most', MAX_RESTART_MS, 'ms'),
    ];
    const loadAverageEnd = machineInfo().loadAverage;
    const table = formatTable([
      { title: 'what', align: 'left' },
      { title: 'models' },
      { title: 'errors' },
      { title: 'p50 µs' },
      { title: 'p99 µs' },
      { title: 'models/s' },
      { title: 'vs baseline' },
      { title: 'etcd writes/model' },
    ], [baseline, mesh].map((row) => [
      row.what,
      String(row.result.calls),
      String(row.result.errors),
      integer(row.result.p50Us),
      integer(row.result.p99Us),
      integer(row.result.callsPerSecond),
      row === baseline ? '(baseline)' : ratio(row.result.callsPerSecond / baseline.result.callsPerSecond),
      figure(row.writesPerModel),
    ]));
    const lines = [
      table,
      '',
      `${CONCURRENCY} calls in flight (half to each mesh; the baseline: one etcd3 client). Writes per model are store revisions`
        + ` during the run minus the idle rate (${figure(backgroundPerMs * 1_000)}/s: instance records).`,
      `mesh-1 spawn to ready: ${integer(cluster.meshStartMs[1])} ms into the empty store, ${integer(restartMs)} ms restarting into ${count} records.`,
      ...(options.quick ? ['--quick: a smoke run, not figures to quote.'] : []),
      machineLine(machine, loadAverageEnd, 'The client, 2 meshes, 2 example runtimes and etcd'),
      '',
      ...checks.map((c) => checkLine(c)),
      ...(problems.length ? ['', 'INVALID measurement:', ...problems.map((p) => `  - ${p}`)] : []),
    ];
    return {
      scenario: 'registration',
      valid: problems.length === 0,
      problems,
      table: lines.join('\n'),
      data: {
        quick: options.quick,
        models: count,
        concurrency: CONCURRENCY,
        backgroundWritesPerSecond: backgroundPerMs * 1_000,
        rows: [baseline, mesh].map((row) => ({ what: row.what, writesPerModel: row.writesPerModel, ...row.result })),
        meshStartEmptyMs: cluster.meshStartMs[1],
        meshRestartMs: restartMs,
        machine,
        loadAverageEnd,
        checks,
      },
    };
  });
}
