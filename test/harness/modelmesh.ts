import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { Metadata, ServiceError, credentials } from '@grpc/grpc-js';
import { freePort } from './ports';
import { ManagedProcess, ProcessGroup } from './processes';
import { StopWaiting, httpGet, waitFor, waitForTcpPort } from './wait';
import * as mm from '../../proto/gen/model-mesh';
import { ModelMeshClient } from '../../proto/gen/model-mesh';

/**
 * Starts `modelmesh` commands exactly as the command-line contract (design §9) says, as real processes. They run
 * the command's entry (`main` of runtime/src/cli.ts) under ts-node in transpile-only mode: the sources under test,
 * not a possibly stale runtime/dist.
 */

const REPO = resolvePath(__dirname, '..', '..');
const ENTRY = 'require("./runtime/src/cli").main(process.argv.slice(1))'
  + '.then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; })';
const START_TIMEOUT_MS = 60_000;

/** Extra node options for every started `modelmesh`, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile a benchmark. */
const NODE_ARGS = (process.env.MM_TEST_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/** How to run `modelmesh <args>` here: the program, its arguments, its working folder and the env it needs. */
export interface ModelmeshInvocation {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
}

/** The local stand-in for the `modelmesh` binary (used by spawnModelmesh, and by the e2e tier's pod runner). */
export function modelmeshInvocation(args: readonly string[]): ModelmeshInvocation {
  // The built runtime, as production runs it (benchmarks; `npm run compile` first); tests run the sources.
  if (process.env.MM_TEST_COMPILED === '1') {
    return { command: process.execPath, args: [...NODE_ARGS, 'runtime/bin/modelmesh.js', ...args], cwd: REPO, env: {} };
  }
  return {
    command: process.execPath,
    args: [...NODE_ARGS, '-r', 'ts-node/register/transpile-only', '-e', ENTRY, ...args],
    cwd: REPO,
    env: { TS_NODE_PROJECT: 'runtime/tsconfig.json' },
  };
}

export function spawnModelmesh(group: ProcessGroup, name: string, args: readonly string[], env: Record<string, string> = {}): ManagedProcess {
  const run = modelmeshInvocation(args);
  return group.spawn(run.command, run.args, { name, cwd: run.cwd, env: { ...run.env, ...env } });
}

export interface ExampleRuntimeHandle {
  readonly name: string;
  readonly port: number;
  readonly process: ManagedProcess;
}

export async function startExampleRuntime(group: ProcessGroup, name: string, flags: readonly string[] = [],
  fixedPort?: number): Promise<ExampleRuntimeHandle> {
  const port = fixedPort ?? await freePort();
  const proc = spawnModelmesh(group, name, ['runtime', 'example', '--port', String(port), ...flags]);
  await waitFor(`${name} listening on ${port}`, async () => {
    if (!proc.running) throw new StopWaiting(`${name} exited early:\n${proc.log}`);
    return waitForTcpPort(port, '127.0.0.1', { timeoutMs: 200 });
  }, { timeoutMs: START_TIMEOUT_MS });
  return { name, port, process: proc };
}

/** Starts `modelmesh runtime onnx` on a free port (extra flags and env as given) and waits until it listens. */
export async function startOnnxRuntime(group: ProcessGroup, name: string, flags: readonly string[] = [],
  env: Record<string, string> = {}): Promise<ExampleRuntimeHandle> {
  const port = await freePort();
  const proc = spawnModelmesh(group, name, ['runtime', 'onnx', '--port', String(port), ...flags], env);
  await waitFor(`${name} listening on ${port}`, async () => {
    if (!proc.running) throw new StopWaiting(`${name} exited early:\n${proc.log}`);
    return waitForTcpPort(port, '127.0.0.1', { timeoutMs: 200 });
  }, { timeoutMs: START_TIMEOUT_MS });
  return { name, port, process: proc };
}

/** Writes an etcd_connection file whose root_prefix isolates this mesh in a shared etcd. */
export function etcdConnectionFile(endpoint: string, rootPrefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mm-etcd-conn-'));
  const file = join(dir, 'etcd_connection');
  writeFileSync(file, JSON.stringify({ endpoints: endpoint, root_prefix: rootPrefix }));
  return file;
}

export interface MeshHandle {
  readonly instanceId: string;
  readonly grpcPort: number;
  readonly probePort: number;
  readonly prestopPort: number;
  /** KServe v2 REST port, when started with `rest: true`. */
  readonly restPort?: number;
  readonly process: ManagedProcess;
  readonly client: ModelMeshClient;
}

export interface StartMeshOptions {
  readonly instanceId: string;
  readonly runtimePort: number;
  /** KV_STORE value. */
  readonly kvStore: string;
  readonly serviceName?: string;
  /** Serve KServe v2 REST on a free port. @default false */
  readonly rest?: boolean;
  readonly env?: Record<string, string>;
}

/** A `modelmesh serve` process just spawned, with the ports it was given. */
export interface SpawnedMesh {
  readonly grpcPort: number;
  readonly probePort: number;
  readonly prestopPort: number;
  /** 0 when REST is off. */
  readonly restPort: number;
  readonly process: ManagedProcess;
}

/** Spawns `modelmesh serve` on free ports without waiting for it (for tests of how it fails to start). */
export async function spawnMesh(group: ProcessGroup, options: StartMeshOptions): Promise<SpawnedMesh> {
  const [grpcPort, probePort, prestopPort] = [await freePort(), await freePort(), await freePort()];
  const restPort = options.rest ? await freePort() : 0;
  const proc = spawnModelmesh(group, `mesh ${options.instanceId}`, ['serve'], {
    MM_SERVICE_NAME: options.serviceName ?? 'modelmesh-serving',
    KV_STORE: options.kvStore,
    MM_INSTANCE_ID: options.instanceId,
    MM_SVC_GRPC_PORT: String(grpcPort),
    MM_PROBE_PORT: String(probePort),
    MM_PRESTOP_WAIT_PORT: String(prestopPort),
    MM_REST_PORT: String(restPort),
    MM_METRICS: 'disabled',
    INTERNAL_GRPC_PORT: String(options.runtimePort),
    MM_KV_LEASE_TTL_SECONDS: '3',
    MM_LOG_LEVEL: process.env.MM_TEST_LOG_LEVEL ?? 'info',
    ...options.env,
  });
  return { grpcPort, probePort, prestopPort, restPort, process: proc };
}

/** Starts `modelmesh serve` and waits until its /ready probe answers 200. */
export async function startMesh(group: ProcessGroup, options: StartMeshOptions): Promise<MeshHandle> {
  const { grpcPort, probePort, prestopPort, restPort, process: proc } = await spawnMesh(group, options);
  await waitFor(`mesh ${options.instanceId} ready on probe port ${probePort}`, async () => {
    if (!proc.running) throw new StopWaiting(`mesh ${options.instanceId} exited early:\n${proc.log}`);
    return (await httpGet(`http://127.0.0.1:${probePort}/ready`)).status === 200;
  }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 100 });
  const client = new ModelMeshClient(`127.0.0.1:${grpcPort}`, credentials.createInsecure());
  return { instanceId: options.instanceId, grpcPort, probePort, prestopPort, ...(restPort ? { restPort } : {}), process: proc, client };
}

interface MeshCalls {
  registerModel: [mm.RegisterModelRequest, mm.ModelStatusInfo];
  unregisterModel: [mm.UnregisterModelRequest, mm.UnregisterModelResponse];
  getModelStatus: [mm.GetStatusRequest, mm.ModelStatusInfo];
  ensureLoaded: [mm.EnsureLoadedRequest, mm.ModelStatusInfo];
  setVModel: [mm.SetVModelRequest, mm.VModelStatusInfo];
  deleteVModel: [mm.DeleteVModelRequest, mm.DeleteVModelResponse];
  getVModelStatus: [mm.GetVModelStatusRequest, mm.VModelStatusInfo];
}
type MeshMethods = keyof MeshCalls;
type RequestOf<M extends MeshMethods> = MeshCalls[M][0];
type ResponseOf<M extends MeshMethods> = MeshCalls[M][1];

const REQUEST_CODECS = {
  registerModel: mm.RegisterModelRequest,
  unregisterModel: mm.UnregisterModelRequest,
  getModelStatus: mm.GetStatusRequest,
  ensureLoaded: mm.EnsureLoadedRequest,
  setVModel: mm.SetVModelRequest,
  deleteVModel: mm.DeleteVModelRequest,
  getVModelStatus: mm.GetVModelStatusRequest,
} as const;

/** Calls a management method with a partial request (defaults filled as the wire would), optionally with metadata. */
export function callMesh<M extends MeshMethods>(client: ModelMeshClient, method: M, request: Partial<RequestOf<M>>,
  metadata: Record<string, string> = {}, timeoutMs = 60_000): Promise<ResponseOf<M>> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const full = (REQUEST_CODECS[method] as { fromPartial(o: unknown): RequestOf<M> }).fromPartial(request);
  return new Promise((resolve, reject) => {
    const fn = client[method] as unknown as (req: RequestOf<M>, md: Metadata, opts: { deadline: number },
      cb: (err: ServiceError | null, res: ResponseOf<M>) => void) => void;
    fn.call(client, full, md, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}
