import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { LoadEntry } from './load-generator';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { EtcdServer, startEtcd } from '../harness/etcd';
import {
  ExampleRuntimeHandle, MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh,
} from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ProcessGroup } from '../harness/processes';
import { uniquePrefix } from '../harness/shared-etcd';

/**
 * The mesh the chaos scenarios disturb: a private etcd (scenario 3 stops it, so it cannot be the shared one), mesh +
 * example-runtime pairs, and ~200 registered models each loaded once. Built from the test harness; this module only
 * keeps track of which pairs are current and what the registry says.
 */

const MiB = 1024 * 1024;
const SERVICE = 'modelmesh-serving';
/** A loaded model answers at once; loading one takes well under this even on a busy machine. */
const ENSURE_LOADED_TIMEOUT_MS = 30_000;
/** Concurrent management calls while registering and loading the models. */
const SETUP_CONCURRENCY = 8;

/** A copy the registry lists as loaded. */
export interface Copy {
  readonly modelId: string;
  readonly instanceId: string;
}

const lastPart = (key: string) => key.slice(key.lastIndexOf('/') + 1);

/** A pod: one mesh and the model server beside it. */
export interface Pair {
  readonly mesh: MeshHandle;
  readonly runtime: ExampleRuntimeHandle;
}

export interface ChaosClusterOptions {
  readonly pairs: number;
  readonly models: number;
  /** Extra time every load takes in the example runtime, so moves and just-in-time loads are not free. */
  readonly loadDelayMs: number;
  readonly shutdownTimeoutMs: number;
}

export class ChaosCluster {
  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const dataDir = mkdtempSync(join(tmpdir(), 'mm-chaos-etcd-'));
    // Fixed ports and data folder: scenario 3 restarts etcd at the same address with the same data.
    const clientPort = await freePort();
    let peerPort = await freePort();
    // A port just released may be handed out again at once.
    while (peerPort === clientPort) peerPort = await freePort();
    const etcd = await startEtcd({ dataDir, clientPort, peerPort });
    const cluster = new ChaosCluster(options, etcd, dataDir, peerPort);
    try {
      cluster.writeModels();
      cluster.pairs = await Promise.all(Array.from({ length: options.pairs }, () => cluster.startPair()));
      await cluster.ensureAllLoaded();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** The example model's answer: its file's text followed by the input. */
  static answer(modelId: string, input: string): string {
    return `${modelId}: ${input}`;
  }

  /** Entry points for the load generator. */
  static entries(pairs: readonly Pair[]): LoadEntry[] {
    return pairs.map((p) => ({ name: p.mesh.instanceId, port: p.mesh.grpcPort }));
  }

  /** The current pairs, in the order scenarios replace them. */
  pairs: Pair[] = [];
  readonly models: string[];
  private readonly group = new ProcessGroup();
  /** Every pair ever started, for the logs. */
  private readonly everyPair: Pair[] = [];
  private readonly modelDir = mkdtempSync(join(tmpdir(), 'mm-chaos-models-'));
  private readonly rootPrefix = uniquePrefix('chaos');
  private readonly kvStore: string;
  private nextId = 0;

  private constructor(private readonly options: ChaosClusterOptions, private etcdServer: EtcdServer,
    private readonly etcdDataDir: string, private readonly etcdPeerPort: number) {
    this.models = Array.from({ length: options.models }, (_, i) => `chaos-${String(i).padStart(3, '0')}`);
    this.kvStore = `etcd:${etcdConnectionFile(etcdServer.endpoint, this.rootPrefix)}`;
  }

  /** Writes a model file (its text is the model's answer prefix) and returns its path. */
  modelFile(modelId: string): string {
    const path = join(this.modelDir, modelId);
    writeFileSync(path, `${modelId}: `);
    return path;
  }

  /** Starts a model server and a mesh beside it under a new instance id; resolves once the mesh reports ready. */
  async startPair(): Promise<Pair> {
    const id = `mesh-${this.nextId++}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const runtime = await startExampleRuntime(this.group, `runtime of ${id}`, this.runtimeFlags());
        const mesh = await startMesh(this.group, {
          instanceId: id,
          runtimePort: runtime.port,
          kvStore: this.kvStore,
          serviceName: SERVICE,
          env: { SHUTDOWN_TIMEOUT_MS: String(this.options.shutdownTimeoutMs) },
        }).catch(async (err: Error) => {
          await runtime.process.stop();
          throw err;
        });
        const pair = { mesh, runtime };
        this.everyPair.push(pair);
        return pair;
      } catch (err) {
        // freePort() hands out a port that another process on the machine may bind first; new ports fix that.
        if (attempt >= 2 || !/EADDRINUSE/.test((err as Error).message)) throw err;
      }
    }
  }

  /**
   * Brings the mesh back to its starting shape: a pair whose mesh or model server is gone (a previous scenario
   * killed it, or failed half-way) is replaced, and every model is loaded somewhere.
   */
  async restore(): Promise<void> {
    const healthy = this.pairs.filter((p) => p.mesh.process.running && p.runtime.process.running);
    for (const pair of this.pairs.filter((p) => !healthy.includes(p))) await this.stopPair(pair);
    const added = await Promise.all(Array.from({ length: this.options.pairs - healthy.length }, () => this.startPair()));
    this.pairs = [...healthy, ...added];
    await this.ensureAllLoaded();
  }

  /** Stops a pair: the mesh first (SIGTERM, it leaves), then its model server. */
  async stopPair(pair: Pair): Promise<void> {
    pair.mesh.client.close();
    await pair.mesh.process.stop('SIGTERM', this.options.shutdownTimeoutMs + 5_000);
    await pair.runtime.process.stop();
  }

  /** Registers every model (an existing registration with the same attributes is accepted) and loads each once. */
  async ensureAllLoaded(): Promise<void> {
    const queue = [...this.models];
    const worker = async (w: number) => {
      for (let modelId = queue.shift(); modelId; modelId = queue.shift()) {
        const { mesh } = this.pairs[w % this.pairs.length];
        const result = await (async () => {
          await callMesh(mesh.client, 'registerModel', { modelId, modelInfo: { type: 'example', path: join(this.modelDir, modelId), key: '' } });
          return callMesh(mesh.client, 'ensureLoaded', { modelId, sync: true }, {}, ENSURE_LOADED_TIMEOUT_MS);
        })().catch((err: Error) => {
          throw new Error(`registering and loading ${modelId} through ${mesh.instanceId}: ${err.message}`);
        });
        if (result.status !== ModelStatus.LOADED) {
          throw new Error(`ensureLoaded ${modelId} through ${mesh.instanceId}: status ${ModelStatus[result.status]} ${result.errors.join('; ')}`);
        }
      }
    };
    await Promise.all(Array.from({ length: SETUP_CONCURRENCY }, (_, w) => worker(w)));
  }

  /** Loaded copies per instance, read from etcd (instances without copies are absent). */
  async loadedCopiesByInstance(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const { instanceId } of await this.loadedCopies()) counts.set(instanceId, (counts.get(instanceId) ?? 0) + 1);
    return counts;
  }

  /** Every loaded copy the registry lists, read from etcd. */
  async loadedCopies(): Promise<Copy[]> {
    const records = await this.readStore('registry/');
    return Object.entries(records).flatMap(([key, raw]) => {
      const copies = (JSON.parse(raw) as { copies?: Record<string, { state: string }> }).copies ?? {};
      return Object.entries(copies).filter(([, c]) => c.state === 'loaded').map(([instanceId]) => ({ modelId: lastPart(key), instanceId }));
    });
  }

  /**
   * What is wrong with the registry of this cluster's models, as etcd holds it: a model without a loaded copy, a copy
   * on an instance that has no instance record, a copy still "loading" after `staleLoadingMs`, or a copy of `earlier`
   * that the registry no longer lists although the instance's model server still holds it. Empty when sound.
   */
  async registryProblems(staleLoadingMs: number, earlier: readonly Copy[] = []): Promise<string[]> {
    const [instances, registry] = await Promise.all([this.readStore('instances/'), this.readStore('registry/')]);
    const live = new Set(Object.keys(instances).map(lastPart));
    const now = Date.now();
    const problems: string[] = [];
    const copiesOf = new Map<string, Record<string, { state: string; since: number }>>();
    for (const [key, raw] of Object.entries(registry)) {
      copiesOf.set(lastPart(key), (JSON.parse(raw) as { copies?: Record<string, { state: string; since: number }> }).copies ?? {});
    }
    for (const modelId of this.models) {
      const copies = Object.entries(copiesOf.get(modelId) ?? {});
      const described = copies.map(([id, c]) => `${id} ${c.state} for ${now - c.since} ms`).join(', ') || 'none';
      if (!copies.some(([, c]) => c.state === 'loaded')) problems.push(`${modelId}: no loaded copy (copies: ${described})`);
      for (const [id, copy] of copies) {
        if (!live.has(id)) problems.push(`${modelId}: copy on ${id}, which has no instance record`);
        if (copy.state === 'loading' && now - copy.since > staleLoadingMs) problems.push(`${modelId}: still loading on ${id} after ${now - copy.since} ms`);
      }
    }
    for (const { modelId, instanceId } of earlier) {
      const listed = copiesOf.get(modelId)?.[instanceId];
      if (listed?.state === 'loaded') continue;
      const pair = this.pairs.find((p) => p.mesh.instanceId === instanceId);
      if (pair && await this.modelServerHolds(pair, modelId)) {
        problems.push(`${modelId}: loaded in the model server of ${instanceId}, but the registry lists `
          + `${listed ? `it ${listed.state} there for ${now - listed.since} ms` : 'no copy there'}`);
      }
    }
    return problems;
  }

  /** Asks a pair's model server directly (KServe v2 ModelReady) whether it holds a model. */
  async modelServerHolds(pair: Pair, modelId: string): Promise<boolean> {
    if (!pair.runtime.process.running) return false;
    const client = new GRPCInferenceServiceClient(`127.0.0.1:${pair.runtime.port}`, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set('mm-model-id', modelId);
    try {
      return await new Promise<boolean>((resolve, reject) => client.modelReady({ name: modelId, version: '' }, metadata,
        { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res.ready))));
    } finally {
      client.close();
    }
  }

  /** The mesh's records under a prefix of its namespace, read from etcd directly (key → JSON text). */
  async readStore(prefix: string): Promise<Record<string, string>> {
    const namespace = `${this.rootPrefix}/mm/${SERVICE}/`.replace(/\/{2,}/g, '/');
    // A client per read: scenario 3 restarts etcd, and a fresh client needs no reconnect back-off.
    const client = new Etcd3({ hosts: this.etcdServer.endpoint });
    try {
      return await client.getAll().prefix(namespace + prefix).options({ deadline: Date.now() + 5_000 }).strings();
    } finally {
      client.close();
    }
  }

  /** The pair whose mesh holds the most loaded copies: the disturbance that matters most. */
  async busiestPair(): Promise<{ pair: Pair; copies: number; byInstance: Map<string, number> }> {
    const byInstance = await this.loadedCopiesByInstance();
    const copies = (p: Pair) => byInstance.get(p.mesh.instanceId) ?? 0;
    const pair = this.pairs.reduce((best, p) => (copies(p) > copies(best) ? p : best));
    return { pair, copies: copies(pair), byInstance };
  }

  /**
   * Kills a pair's model server (`kill -9`) and, once `whileDown` has run, starts it again on the same port (the mesh
   * keeps its configured SPI address). Returns the pair with the new model server.
   */
  async killRuntime(pair: Pair, whileDown: () => Promise<void>): Promise<Pair> {
    await pair.runtime.process.kill();
    await whileDown();
    const runtime = await startExampleRuntime(this.group, `${pair.runtime.name} (restarted)`, this.runtimeFlags(), pair.runtime.port);
    const restarted = { mesh: pair.mesh, runtime };
    this.pairs = this.pairs.map((p) => (p === pair ? restarted : p));
    this.everyPair.push(restarted);
    return restarted;
  }

  /** Stops etcd (SIGTERM), keeping its data. */
  async stopEtcd(): Promise<void> {
    await this.etcdServer.stop();
  }

  /** Starts etcd again on the same ports with the same data; resolves once it reports healthy. */
  async restartEtcd(): Promise<void> {
    this.etcdServer = await startEtcd({ dataDir: this.etcdDataDir, clientPort: this.etcdServer.clientPort, peerPort: this.etcdPeerPort });
  }

  /**
   * Writes every process's output to files (for a failed scenario), with the instance and model records as etcd
   * holds them when it answers, and returns the folder.
   */
  async saveLogs(label: string): Promise<string> {
    const dir = join(tmpdir(), `mm-chaos-logs-${label.replace(/\W+/g, '-')}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    this.everyPair.forEach((pair, i) => {
      writeFileSync(join(dir, `${pair.mesh.instanceId}.log`), pair.mesh.process.log);
      writeFileSync(join(dir, `${pair.mesh.instanceId}-runtime-${i}.log`), pair.runtime.process.log);
    });
    writeFileSync(join(dir, 'etcd.log'), this.etcdServer.process.log);
    const store = await Promise.all([this.readStore('instances/'), this.readStore('registry/')])
      .then(([instances, registry]) => JSON.stringify({ instances, registry }, null, 1), (err: Error) => `etcd not readable: ${err.message}`);
    writeFileSync(join(dir, 'store.json'), store);
    return dir;
  }

  async close(): Promise<void> {
    for (const pair of this.everyPair) pair.mesh.client.close();
    await this.group.stopAll();
    await this.etcdServer.stop();
    rmSync(this.etcdDataDir, { recursive: true, force: true });
    rmSync(this.modelDir, { recursive: true, force: true });
  }

  private runtimeFlags(): string[] {
    // Every model has the same size, so placement spreads them by free space instead of by file length.
    return ['--load-delay-ms', String(this.options.loadDelayMs), '--model-size', String(MiB)];
  }

  private writeModels(): void {
    for (const modelId of this.models) this.modelFile(modelId);
  }
}
