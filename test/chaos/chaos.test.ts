import { ServiceError, status } from '@grpc/grpc-js';
import { ChaosCluster, Pair } from './cluster';
import { formatSummary, LoadEntry, LoadGenerator, LoadReport, Phase } from './load-generator';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { callMesh } from '../harness/modelmesh';
import { httpGet, waitFor } from '../harness/wait';

/**
 * Chaos: three meshes with their model servers serve ~200 loaded models under a steady load entering through several
 * instances, while one thing goes wrong at a time. Each scenario prints its counts and asserts that no call failed.
 *
 * The scenarios share one mesh (starting six processes costs more than a scenario on a 2-core machine); each begins
 * by restoring three healthy pairs with every model loaded, so a scenario does not depend on how the previous one
 * ended. The etcd outage runs last: it is the one disturbance whose damage (registry records) a restart of processes
 * would not repair.
 */

const PAIRS = 3;
const MODELS = 200;
const LOAD_DELAY_MS = 50;
const SHUTDOWN_TIMEOUT_MS = 20_000;
const CALLS_PER_SECOND = 150;
/** Calls finished before the disturbance starts, and again after it is over. */
const PHASE_CALLS = 450;
const CALL_TIMEOUT_MS = 20_000;
/** How long etcd stays down in scenario 3. */
const ETCD_OUTAGE_MS = 10_000;
/** A management write while etcd is down must fail within the store's call deadline (5 s) and a margin. */
const FAIL_FAST_MS = 7_000;
/** A copy claimed "loading" for longer than this, with loads taking ~50 ms, is stuck. */
const STALE_LOADING_MS = 10_000;

let cluster: ChaosCluster;

beforeAll(async () => {
  const started = Date.now();
  cluster = await ChaosCluster.start({ pairs: PAIRS, models: MODELS, loadDelayMs: LOAD_DELAY_MS, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS });
  const copies = await cluster.loadedCopiesByInstance();
  process.stdout.write(`chaos set-up: ${PAIRS} meshes, ${MODELS} models loaded in ${((Date.now() - started) / 1000).toFixed(1)} s;`
    + ` copies ${describeCopies(copies)}\n`);
}, 180_000);

afterAll(async () => {
  await cluster?.close();
}, 60_000);

beforeEach(async () => {
  try {
    await cluster.restore();
  } catch (err) {
    process.stdout.write(`chaos: restoring three pairs failed: ${(err as Error).message}; process output saved in ${await cluster.saveLogs('restore')}\n`);
    throw err;
  }
}, 120_000);

function describeCopies(copies: ReadonlyMap<string, number>): string {
  return [...copies].sort(([a], [b]) => a.localeCompare(b)).map(([id, n]) => `${id}=${n}`).join(' ') || 'none';
}

/** Waits until `n` calls sent in `phase` have finished; fails early if the generator hit one of its bounds. */
function phaseFinished(load: LoadGenerator, phase: Phase, n: number, timeoutMs = 60_000): Promise<true> {
  return waitFor(`${n} calls of phase "${phase}" to finish`, () => {
    if (load.endedBy) throw new Error(`the load generator stopped early: ${load.endedBy}`);
    return load.finished(phase) >= n;
  }, { timeoutMs, intervalMs: 50 });
}

/**
 * Holds a disturbance for its defined length (etcd "down for 10 s"). This is the scenario's parameter, not a way of
 * waiting for another process: those waits are conditions.
 */
function holdUntil(instant: number): Promise<true> {
  return waitFor('the end of the outage', () => Date.now() >= instant, { timeoutMs: instant - Date.now() + 5_000, intervalMs: 100 });
}

type Step = (load: LoadGenerator, notes: string[]) => Promise<void>;

/**
 * Runs one scenario: load through `entries`, `before` calls, the disturbance, then `afterwards` (checks that run
 * once the disturbance is over, under load) and `after` calls; prints the summary (whatever happened) and returns
 * the report. On failure the processes' output is saved and its folder printed.
 */
async function scenario(name: string, entries: readonly LoadEntry[], disturb: Step, afterwards?: Step): Promise<LoadReport> {
  const load = new LoadGenerator({
    models: cluster.models,
    entries,
    callsPerSecond: CALLS_PER_SECOND,
    maxCalls: 40_000,
    maxDurationMs: 200_000,
    callTimeoutMs: CALL_TIMEOUT_MS,
    maxInFlight: 2_000,
    expectedAnswer: ChaosCluster.answer,
  }).start();
  const notes: string[] = [];
  let error: unknown;
  try {
    await phaseFinished(load, 'before', PHASE_CALLS);
    load.enterPhase('during');
    await disturb(load, notes);
    load.enterPhase('after');
    await afterwards?.(load, notes);
    await phaseFinished(load, 'after', PHASE_CALLS);
  } catch (err) {
    error = err;
    notes.push(`scenario error: ${(err as Error).message}`);
  }
  const report = await load.stop();
  if (error !== undefined || report.failed > 0) notes.push(`process output saved in ${await cluster.saveLogs(name)}`);
  process.stdout.write(formatSummary(name, report, notes));
  if (error !== undefined) throw error;
  return report;
}

test('scenario 1: rolling restart of every instance in turn (start replacement, SIGTERM old, wait) — failed 0', async () => {
  const exits: Array<[string, number | null]> = [];
  const report = await scenario('1 rolling restart of every instance', ChaosCluster.entries(cluster.pairs), async (load, notes) => {
    notes.push(`copies before: ${describeCopies(await cluster.loadedCopiesByInstance())}`);
    for (const old of [...cluster.pairs]) {
      const replacement = await cluster.startPair();
      // As a Service would: the new pod's endpoint is added once it is ready, the old one removed as it is told to
      // leave. Calls already sent to the old instance finish there: it serves while it leaves.
      cluster.pairs = cluster.pairs.map((p) => (p === old ? replacement : p));
      load.setEntries(ChaosCluster.entries(cluster.pairs));
      const leaveStarted = Date.now();
      old.mesh.client.close();
      const exit = await old.mesh.process.stop('SIGTERM', SHUTDOWN_TIMEOUT_MS + 10_000);
      exits.push([old.mesh.instanceId, exit]);
      await old.runtime.process.stop();
      notes.push(`${old.mesh.instanceId} → ${replacement.mesh.instanceId}: left in ${Date.now() - leaveStarted} ms, exit code ${exit}`);
    }
    notes.push(`copies after: ${describeCopies(await cluster.loadedCopiesByInstance())}`);
  });
  expect(exits.map(([, code]) => code)).toEqual([0, 0, 0]);
  expect(report.failedByCode).toEqual(new Map());
  expect(report.ok).toBe(report.sent);
}, 240_000);

test('scenario 2: kill -9 of one mesh instance — failed 0 among calls entering the survivors', async () => {
  const { pair: victim, copies } = await cluster.busiestPair();
  const survivors = cluster.pairs.filter((p) => p !== victim);
  const report = await scenario('2 kill -9 of one mesh instance', ChaosCluster.entries(survivors), async (_load, notes) => {
    notes.push(`victim ${victim.mesh.instanceId} held ${copies} of ${MODELS} copies; load enters ${survivors.map((p) => p.mesh.instanceId).join(', ')}`);
    const killedAt = Date.now();
    await victim.mesh.process.kill();
    // Its lease expires after MM_KV_LEASE_TTL_SECONDS and the leader removes its copies from the registry.
    await waitFor(`the registry to drop ${victim.mesh.instanceId}'s copies`, async () =>
      !(await cluster.loadedCopiesByInstance()).has(victim.mesh.instanceId), { timeoutMs: 30_000, intervalMs: 250 });
    notes.push(`registry free of ${victim.mesh.instanceId} ${Date.now() - killedAt} ms after the kill;`
      + ` copies ${describeCopies(await cluster.loadedCopiesByInstance())}`);
  });
  expect(copies).toBeGreaterThan(0);
  expect(report.failedByCode).toEqual(new Map());
  expect(report.ok).toBe(report.sent);
}, 180_000);

test('scenario 4: the model server of one mesh killed, restarted later on the same port — failed 0 after retries', async () => {
  const { pair: victim, copies } = await cluster.busiestPair();
  const id = victim.mesh.instanceId;
  const ready = async () => (await httpGet(`http://127.0.0.1:${victim.mesh.probePort}/ready`)).status;
  const report = await scenario('4 model server of one mesh killed', ChaosCluster.entries(cluster.pairs), async (load, notes) => {
    notes.push(`victim: the model server of ${id}, which held ${copies} of ${MODELS} copies`);
    const killedAt = Date.now();
    await cluster.killRuntime(victim, async () => {
      await waitFor(`${id} to report not ready and give up its copies`, async () =>
        await ready() === 503 && !(await cluster.loadedCopiesByInstance()).has(id), { timeoutMs: 30_000, intervalMs: 250 });
      notes.push(`${id} not ready, its copies gone from the registry ${Date.now() - killedAt} ms after the kill`);
      // Calls keep entering the instance without a model server too (it forwards them) while it stays down.
      const before = load.finished('during');
      await waitFor('calls while the model server is down', () => load.finished('during') >= before + PHASE_CALLS, { timeoutMs: 60_000 });
    });
    const restartedAt = Date.now();
    await waitFor(`${id} ready again`, async () => await ready() === 200, { timeoutMs: 30_000, intervalMs: 200 });
    notes.push(`${id} ready again ${Date.now() - restartedAt} ms after its model server restarted`);
  });
  expect(copies).toBeGreaterThan(0);
  expect(report.failedByCode).toEqual(new Map());
  expect(report.ok).toBe(report.sent);
}, 180_000);

test('scenario 3: etcd stopped for 10 s, then restarted — failed 0 for loaded models; registrations fail fast, then resume', async () => {
  let refused: { code: status | undefined; details: string; ms: number } | undefined;
  const notLive: string[] = [];
  let resumedAfterMs = -1;
  let loadedAfter: ModelStatus | undefined;
  let registryProblems: string[] = [];
  const entryPairs: readonly Pair[] = cluster.pairs;
  // A copy loaded before the outage that a model server still holds afterwards must be listed again once the mesh
  // has reconciled with etcd (or unloaded): otherwise it is a ghost, and a load placed there never completes.
  const copiesBefore = await cluster.loadedCopies();
  const report = await scenario('3 etcd stopped for 10 s', ChaosCluster.entries(entryPairs), async (load, notes) => {
    const management = entryPairs[0].mesh.client;
    await cluster.stopEtcd();
    const stoppedAt = Date.now();
    refused = await callMesh(management, 'registerModel',
      { modelId: 'chaos-during-outage', modelInfo: { type: 'example', path: cluster.modelFile('chaos-during-outage'), key: '' } }, {}, 30_000)
      .then(() => ({ code: status.OK, details: 'registered', ms: Date.now() - stoppedAt }),
        (err: ServiceError) => ({ code: err.code, details: err.details, ms: Date.now() - stoppedAt }));
    notes.push(`registerModel while etcd is down: ${status[refused.code ?? status.UNKNOWN]} after ${refused.ms} ms: ${refused.details}`);
    // An etcd outage must not make the kubelet restart the meshes.
    for (const pair of entryPairs) {
      const live = await httpGet(`http://127.0.0.1:${pair.mesh.probePort}/live`);
      if (live.status !== 200) notLive.push(`${pair.mesh.instanceId}: /live ${live.status}`);
    }
    await holdUntil(stoppedAt + ETCD_OUTAGE_MS);
    const restartAt = Date.now();
    await cluster.restartEtcd();
    const healthyAt = Date.now();
    notes.push(`etcd restarted after ${restartAt - stoppedAt} ms, healthy again after ${healthyAt - stoppedAt} ms;`
      + ` ${load.finished('during')} calls finished meanwhile`);
  }, async (_load, notes) => {
    const management = entryPairs[0].mesh.client;
    const healthyAt = Date.now();
    // The meshes' etcd clients reconnect with a back-off of at most 5 s; registrations then succeed again.
    const registered = await waitFor('registerModel to succeed after etcd returned', () => callMesh(management, 'registerModel',
      { modelId: 'chaos-after-outage', modelInfo: { type: 'example', path: cluster.modelFile('chaos-after-outage'), key: '' } }, {}, 5_000),
    { timeoutMs: 20_000, intervalMs: 250 });
    resumedAfterMs = Date.now() - healthyAt;
    loadedAfter = (await callMesh(management, 'ensureLoaded', { modelId: 'chaos-after-outage', sync: true }, {}, 30_000)
      .catch((err: ServiceError) => {
        notes.push(`ensureLoaded after the outage failed: ${status[err.code]} ${err.details}`);
        return { status: undefined };
      })).status;
    notes.push(`registerModel succeeded ${resumedAfterMs} ms after etcd was healthy (status ${ModelStatus[registered.status]});`
      + ` ensureLoaded: ${loadedAfter === undefined ? 'failed' : ModelStatus[loadedAfter]}`);
    // Local state reconciles once etcd is back: every model has a loaded copy on a live instance, no claim hangs.
    const consistent = await waitFor('the registry to be consistent again', async () => {
      registryProblems = await cluster.registryProblems(STALE_LOADING_MS, copiesBefore);
      return registryProblems.length === 0;
    }, { timeoutMs: 20_000, intervalMs: 500 }).catch(() => false);
    notes.push(`registry after the outage: ${consistent ? 'consistent' : `${registryProblems.length} problems 20 s later, e.g.:`}`,
      ...registryProblems.slice(0, 6).map((p) => `  ${p}`));
  });
  expect(refused).toEqual({ code: status.UNAVAILABLE, details: expect.stringMatching(/etcd .* is unreachable/), ms: expect.any(Number) });
  expect(refused!.ms).toBeLessThan(FAIL_FAST_MS);
  expect(notLive).toEqual([]);
  expect(resumedAfterMs).toBeGreaterThanOrEqual(0);
  expect(loadedAfter).toBe(ModelStatus.LOADED);
  expect(report.failedByCode).toEqual(new Map());
  expect(report.ok).toBe(report.sent);
  expect(registryProblems).toEqual([]);
}, 180_000);
