import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { EtcdServer, startEtcd } from '../../test/harness/etcd';
import { ExampleRuntimeHandle, MeshHandle, etcdConnectionFile, startExampleRuntime, startMesh } from '../../test/harness/modelmesh';
import { freePort } from '../../test/harness/ports';
import { ProcessGroup } from '../../test/harness/processes';
import { waitForTcpPort } from '../../test/harness/wait';

/**
 * The topology every scenario measures: a private etcd, two example runtimes and two meshes (mesh-i in front of
 * runtime-i), started through the test harness with the same `modelmesh` commands the tests use.
 */

export interface ClusterOptions {
  /** Names the etcd root prefix, so a leftover key says which scenario wrote it. */
  readonly name: string;
  readonly meshMetrics: boolean;
  /** Extra `modelmesh runtime example` flags. */
  readonly runtimeFlags?: readonly string[];
  /** Extra env of every mesh. */
  readonly meshEnv?: Record<string, string>;
  /** Start the meshes one after the other, so neither competes with the other for CPU and their start times compare. @default false */
  readonly timedStart?: boolean;
}

/**
 * Created empty; `start()` starts everything and `stop()` stops whatever has been started, so a scenario can hand
 * `stop` to `withCleanup` before starting (a Ctrl-C during start-up then still stops what is running).
 */
export class BenchCluster {
  readonly runtimes: ExampleRuntimeHandle[] = [];
  readonly meshes: MeshHandle[] = [];
  /** Milliseconds from spawning each mesh to its /ready answering 200, against the empty store (see `timedStart`). */
  readonly meshStartMs: number[] = [];
  private readonly group = new ProcessGroup();
  private readonly clients: Array<{ close(): void }> = [];
  private modelDir?: string;
  private etcdServer?: EtcdServer;
  private connectionFile?: string;
  private etcdClient?: Etcd3;

  constructor(private readonly options: ClusterOptions) {}

  get etcd(): EtcdServer {
    if (!this.etcdServer) throw new Error('the cluster has not been started');
    return this.etcdServer;
  }

  /** KV_STORE value of the meshes (an etcd_connection file with a root prefix of this run's own). */
  get kvStore(): string {
    return `etcd:${this.connectionFile}`;
  }

  /** Closes `client` when the cluster stops; returns it. */
  track<T extends { close(): void }>(client: T): T {
    this.clients.push(client);
    return client;
  }

  /** Writes an example model file whose text is `text` into a temporary folder deleted on stop; returns its path. */
  modelFile(name: string, text: string): string {
    this.modelDir ??= mkdtempSync(join(tmpdir(), 'mm-bench-models-'));
    const path = join(this.modelDir, name);
    writeFileSync(path, text);
    return path;
  }

  /** A client of the cluster's etcd, for baselines measured straight against the store. */
  get etcd3(): Etcd3 {
    this.etcdClient ??= new Etcd3({ hosts: this.etcd.endpoint });
    return this.etcdClient;
  }

  /** The store's current revision: every write (put, delete or transaction with writes) raises it by one. */
  async revision(): Promise<number> {
    const { header } = await this.etcd3.kv.range({ key: Buffer.from('\0') });
    return Number(header.revision);
  }

  async start(): Promise<void> {
    this.etcdServer = await startEtcd();
    this.connectionFile = etcdConnectionFile(this.etcdServer.endpoint, `/bench-${this.options.name}-${randomBytes(4).toString('hex')}`);
    this.runtimes.push(...await Promise.all([0, 1].map((i) => startExampleRuntime(this.group, `runtime-${i}`, this.options.runtimeFlags ?? []))));
    const started: Array<[MeshHandle, number]> = [];
    if (this.options.timedStart) {
      for (const i of [0, 1]) started.push(await this.startTimed(i));
    } else {
      started.push(...await Promise.all([0, 1].map((i) => this.startTimed(i))));
    }
    for (const [mesh, ms] of started) {
      this.meshes.push(mesh);
      this.meshStartMs.push(ms);
    }
  }

  /**
   * Starts a process that relays TCP bytes between a new port and `targetPort`, parsing nothing: the cheapest hop
   * any proxy could be on this machine, to set the mesh's hop against. Resolves with the new port.
   */
  async startTcpRelay(name: string, targetPort: number): Promise<number> {
    const port = await freePort();
    this.group.spawn(process.execPath, ['-e', TCP_RELAY, String(port), String(targetPort)], { name });
    await waitForTcpPort(port);
    return port;
  }

  /** Stops mesh `index` (SIGTERM, so it leaves cleanly) and starts it again; resolves with spawn-to-ready milliseconds. */
  async restartMesh(index: number): Promise<number> {
    this.meshes[index].client.close();
    await this.meshes[index].process.stop();
    const [mesh, ms] = await this.startTimed(index);
    this.meshes[index] = mesh;
    return ms;
  }

  /** Stops everything started; safe to call twice. */
  async stop(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    for (const mesh of this.meshes) mesh.client.close();
    this.etcdClient?.close();
    await this.group.stopAll();
    await this.etcdServer?.stop();
    for (const dir of [this.connectionFile && dirname(this.connectionFile), this.modelDir]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }

  private async startTimed(i: number): Promise<[MeshHandle, number]> {
    const env = {
      // Per-load info lines would cost the meshes more than what is measured; warnings still show.
      MM_LOG_LEVEL: 'warn',
      MM_METRICS: this.options.meshMetrics ? `prometheus:port=${await freePort()};scheme=http` : 'disabled',
      ...this.options.meshEnv,
    };
    const began = performance.now();
    const mesh = await startMesh(this.group, { instanceId: `mesh-${i}`, runtimePort: this.runtimes[i].port, kvStore: this.kvStore, env });
    return [mesh, performance.now() - began];
  }
}

/** The relay's program (`node -e`): one upstream connection per client connection, bytes piped both ways, no Nagle delay. */
const TCP_RELAY = `
const net = require('node:net');
const [port, target] = process.argv.slice(1).map(Number);
net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: target, noDelay: true });
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
}).listen(port, '127.0.0.1');
`;

/** Resident set size of a running process in bytes (Linux: VmRSS in /proc/<pid>/status). */
export function residentBytes(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : NaN;
}
