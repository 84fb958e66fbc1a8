import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ChannelCredentials, Metadata, ServiceError, credentials, status } from '@grpc/grpc-js';
import { formatTable } from './table';
import { Ports } from '../../../lib/contract';
import {
  ModelMeshClient, ModelStatusInfo, ModelStatusInfo_ModelStatus, VModelStatusInfo, VModelStatusInfo_VModelStatus,
  modelStatusInfo_ModelStatusToJSON, vModelStatusInfo_VModelStatusToJSON,
} from '../../../proto/gen/model-mesh';
import { ClusterStatusResponse, ListModelsResponse, MeshOperatorClient, ModelSummary } from '../../../proto/gen/operator';

/**
 * `modelmesh status` and `modelmesh models …`: operator commands that talk to a running mesh's front door
 * (`--mesh host:port`) through the management API and the mesh's operator calls. Exit codes: 0 done, 1 the mesh
 * answered with an error or could not be reached, 2 bad usage.
 */

const TLS_USAGE = `  --tls-ca <file>      the front door serves TLS: trust this CA (PEM)
  --tls-cert <file>, --tls-key <file>
                       client certificate and key, when the mesh requires one
`;

export const STATUS_USAGE = `Usage: modelmesh status [--mesh host:port] [--model <id> | --vmodel <id>] [--json]

  Prints the mesh's instances (capacity, use, copies, loads, requests, leader, leaving) and model counts; with
  --model or --vmodel, that model's copies and load failures.

  --mesh <host:port>   a mesh instance's front door (default 127.0.0.1:${Ports.GRPC})
  --json               print JSON instead of tables
${TLS_USAGE}`;

export const MODELS_USAGE = `Usage: modelmesh models <list|register|delete> [options] [--mesh host:port]

  list [--prefix <p>] [--json]                   registered models, their copies and failures
  register <id> --type <t> --path <p> [--key <json>] [--load]
  register --file <models.json> [--load] [--concurrency <n>]
                                                 bulk registration; the file holds a JSON array (or one JSON object
                                                 per line) of {"modelId", "type", "path", "key"?}
  delete <id>...                                 unregister models

  --mesh <host:port>   a mesh instance's front door (default 127.0.0.1:${Ports.GRPC})
${TLS_USAGE}`;

interface Io {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

class UsageError extends Error {}

const DEADLINE_MS = 30_000;

function readPem(flag: string, path: string | boolean | undefined): Buffer | undefined {
  if (typeof path !== 'string') return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Plaintext, or TLS when --ca is given (with a client certificate when --cert and --key are). */
function channelCredentials(values: OptionValues): ChannelCredentials {
  const ca = readPem('--tls-ca', values['tls-ca']);
  const cert = readPem('--tls-cert', values['tls-cert']);
  const key = readPem('--tls-key', values['tls-key']);
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('give --tls-cert and --tls-key together');
  if (!ca) {
    if (cert) throw new UsageError('--tls-cert and --tls-key need --tls-ca (the mesh serves TLS)');
    return credentials.createInsecure();
  }
  try {
    return credentials.createSsl(ca, key ?? null, cert ?? null);
  } catch (err) {
    // OpenSSL's reason alone ("DECODER routines::unsupported") does not say which file is wrong; it never quotes them.
    throw new UsageError(`--tls-ca, --tls-cert and --tls-key must be PEM files (a CA, a certificate and its key): ${(err as Error).message}`);
  }
}

function clients(mesh: string, creds: ChannelCredentials) {
  if (!/^[^\s:]+:\d+$/.test(mesh)) throw new UsageError(`--mesh must be host:port, got "${mesh}"`);
  return {
    mesh,
    management: new ModelMeshClient(mesh, creds),
    operator: new MeshOperatorClient(mesh, creds),
    close() {
      this.management.close();
      this.operator.close();
    },
  };
}
type Clients = ReturnType<typeof clients>;

/** Calls a unary grpc-js method with a deadline; a failure names the mesh and says what went wrong. */
function call<Req, Res>(c: Clients, what: string, invoke: (req: Req, md: Metadata, opts: { deadline: number },
  cb: (err: ServiceError | null, res: Res) => void) => unknown, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke(request, new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err, res) => {
      if (!err) {
        resolve(res);
        return;
      }
      const reason = err.code === status.UNAVAILABLE ? `cannot reach the mesh at ${c.mesh}: ${err.details}` : `${what}: ${err.details} (${status[err.code]})`;
      reject(new Error(reason));
    });
  });
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

function age(ms: number, now: number): string {
  if (ms <= 0) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function renderCluster(cluster: ClusterStatusResponse, now = Date.now()): string {
  const header = `mesh ${cluster.serviceName}: ${cluster.instances.length} instance(s), answered by ${cluster.answeredBy}; `
    + `models ${cluster.models} (loaded ${cluster.modelsLoaded}, with failures ${cluster.modelsWithFailure}), vmodels ${cluster.vmodels}`;
  const table = formatTable(['instance', 'address', 'leader', 'state', 'capacity', 'used', 'copies', 'loading', 'rpm', 'in flight', 'version', 'up', 'lru age'],
    cluster.instances.map((i) => [
      i.instanceId, i.address, i.leader ? 'yes' : '', i.shuttingDown ? 'leaving' : 'serving', bytes(i.capacityBytes),
      `${bytes(i.usedBytes)} (${i.capacityBytes > 0 ? Math.round((100 * i.usedBytes) / i.capacityBytes) : 0}%)`, String(i.copies),
      String(i.loadsInFlight), String(i.requestsPerMinute), String(i.requestsInFlight), i.version, age(i.startTimeMs, now), age(i.lruTimeMs, now),
    ]), [4, 5, 6, 7, 8, 9]);
  return `${header}\n\n${table}\n`;
}

export function renderModel(modelId: string, info: ModelStatusInfo, summary: ModelSummary | undefined, now = Date.now()): string {
  const lines = [`model ${modelId}: ${modelStatusInfo_ModelStatusToJSON(info.status)}`];
  if (summary) lines.push(`type ${summary.type}, size ${summary.sizeBytes ? bytes(summary.sizeBytes) : 'unknown'}, last used ${age(summary.lastUsedMs, now)} ago, vmodel references ${summary.refs}`);
  if (info.modelCopyInfos.length > 0) {
    lines.push('', formatTable(['instance', 'copy', 'since'], info.modelCopyInfos.map((c) => [
      c.location, modelStatusInfo_ModelStatusToJSON(c.copyStatus), age(c.time, now),
    ])));
  }
  const failures = summary?.failures ?? [];
  if (failures.length > 0) lines.push('', 'load failures:', ...failures.map((f) => `  ${f.instanceId} (${age(f.timeMs, now)} ago): ${f.message}`));
  else if (info.errors.length > 0) lines.push('', 'errors:', ...info.errors.map((e) => `  ${e}`));
  return `${lines.join('\n')}\n`;
}

export function renderVModel(vModelId: string, info: VModelStatusInfo): string {
  const lines = [`vmodel ${vModelId}: ${vModelStatusInfo_VModelStatusToJSON(info.status)}`];
  if (info.status !== VModelStatusInfo_VModelStatus.NOT_FOUND) {
    lines.push(`active model ${info.activeModelId}: ${modelStatusInfo_ModelStatusToJSON(info.activeModelStatus?.status ?? ModelStatusInfo_ModelStatus.UNKNOWN)}`);
    if (info.targetModelId && info.targetModelId !== info.activeModelId) {
      lines.push(`target model ${info.targetModelId}: ${modelStatusInfo_ModelStatusToJSON(info.targetModelStatus?.status ?? ModelStatusInfo_ModelStatus.UNKNOWN)}`);
    }
    if (info.owner) lines.push(`owner ${info.owner}`);
  }
  return `${lines.join('\n')}\n`;
}

async function findSummary(c: Clients, modelId: string): Promise<ModelSummary | undefined> {
  const page = await call<{ prefix: string; limit: number; startAfter: string }, ListModelsResponse>(c, 'ListModels',
    c.operator.listModels.bind(c.operator), { prefix: modelId, limit: 1, startAfter: '' });
  return page.models.find((m) => m.modelId === modelId);
}

export async function runStatus(argv: readonly string[], io: Io): Promise<number> {
  return withClients(argv, STATUS_USAGE, io, { model: { type: 'string' }, vmodel: { type: 'string' }, json: { type: 'boolean' } }, async (c, values) => {
    if (values.model !== undefined && values.vmodel !== undefined) throw new UsageError('give --model or --vmodel, not both');
    if (typeof values.model === 'string') {
      const info = await call(c, 'getModelStatus', c.management.getModelStatus.bind(c.management), { modelId: values.model });
      const summary = await findSummary(c, values.model);
      io.out.write(values.json ? `${JSON.stringify({ status: modelStatusInfo_ModelStatusToJSON(info.status), errors: info.errors, summary }, null, 2)}\n`
        : renderModel(values.model, info, summary));
      return info.status === ModelStatusInfo_ModelStatus.NOT_FOUND ? 1 : 0;
    }
    if (typeof values.vmodel === 'string') {
      const info = await call(c, 'getVModelStatus', c.management.getVModelStatus.bind(c.management), { vModelId: values.vmodel, owner: '' });
      io.out.write(values.json ? `${JSON.stringify(info, null, 2)}\n` : renderVModel(values.vmodel, info));
      return info.status === VModelStatusInfo_VModelStatus.NOT_FOUND ? 1 : 0;
    }
    const cluster = await call(c, 'ClusterStatus', c.operator.clusterStatus.bind(c.operator), {});
    io.out.write(values.json ? `${JSON.stringify(cluster, null, 2)}\n` : renderCluster(cluster));
    return 0;
  });
}

export async function runModels(argv: readonly string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list') {
    return withClients(rest, MODELS_USAGE, io, { prefix: { type: 'string' }, json: { type: 'boolean' } }, async (c, values) => {
      const models: ModelSummary[] = [];
      let startAfter = '';
      do {
        const page = await call(c, 'ListModels', c.operator.listModels.bind(c.operator), { prefix: String(values.prefix ?? ''), limit: 1_000, startAfter });
        models.push(...page.models);
        startAfter = page.nextStartAfter;
      } while (startAfter);
      if (values.json) {
        io.out.write(`${JSON.stringify(models, null, 2)}\n`);
      } else {
        io.out.write(`${formatTable(['model', 'type', 'loaded on', 'loading on', 'failures', 'size'], models.map((m) => [
          m.modelId, m.type, m.loadedOn.join(',') || '-', m.loadingOn.join(',') || '-', String(m.failures.length), m.sizeBytes ? bytes(m.sizeBytes) : '-',
        ]), [4])}\n${models.length} model(s)\n`);
      }
      return 0;
    });
  }
  if (sub === 'register') {
    const options = {
      type: { type: 'string' },
      path: { type: 'string' },
      key: { type: 'string' },
      load: { type: 'boolean' },
      file: { type: 'string' },
      concurrency: { type: 'string' },
    } as const;
    return withClients(rest, MODELS_USAGE, io, options, async (c, values, positionals) => {
      const load = values.load === true;
      if (typeof values.file === 'string') {
        if (positionals.length > 0) throw new UsageError('give a model id or --file, not both');
        const concurrency = Number(values.concurrency ?? '8');
        if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new UsageError(`--concurrency must be 1 to 256, got "${String(values.concurrency)}"`);
        return registerFile(c, values.file, load, concurrency, io);
      }
      const [modelId, ...extra] = positionals;
      if (!modelId || extra.length > 0) throw new UsageError('register takes one model id (or --file)');
      if (typeof values.type !== 'string' || typeof values.path !== 'string') throw new UsageError('register needs --type and --path');
      const info = await call(c, 'registerModel', c.management.registerModel.bind(c.management), {
        modelId, modelInfo: { type: values.type, path: values.path, key: String(values.key ?? '') }, loadNow: load, sync: load, lastUsedTime: 0,
      });
      io.out.write(`registered ${modelId}: ${modelStatusInfo_ModelStatusToJSON(info.status)}${info.errors.length ? ` (${info.errors.join('; ')})` : ''}\n`);
      return info.status === ModelStatusInfo_ModelStatus.LOADING_FAILED ? 1 : 0;
    });
  }
  if (sub === 'delete') {
    return withClients(rest, MODELS_USAGE, io, {}, async (c, _values, positionals) => {
      if (positionals.length === 0) throw new UsageError('delete needs at least one model id');
      for (const modelId of positionals) {
        await call(c, `unregisterModel ${modelId}`, c.management.unregisterModel.bind(c.management), { modelId });
        io.out.write(`deleted ${modelId}\n`);
      }
      return 0;
    });
  }
  if (sub === '--help' || sub === '-h') {
    io.out.write(MODELS_USAGE);
    return 0;
  }
  io.err.write(`modelmesh models: ${sub === undefined ? 'a subcommand is required' : `unknown subcommand '${sub}'`}\n\n${MODELS_USAGE}`);
  return 2;
}

interface ModelEntry {
  readonly modelId: string;
  readonly type: string;
  readonly path: string;
  readonly key?: string;
}

/** Reads a JSON array, or one JSON object per line; every entry is checked before anything is registered. */
export function parseModelFile(text: string, file: string): ModelEntry[] {
  const trimmed = text.trim();
  let raw: unknown[];
  try {
    raw = trimmed.startsWith('[') ? JSON.parse(trimmed) as unknown[] : trimmed.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown);
  } catch (err) {
    throw new UsageError(`${file}: not a JSON array or JSON lines (${(err as Error).message})`);
  }
  const seen = new Set<string>();
  return raw.map((entry, i) => {
    const e = entry as Record<string, unknown>;
    const bad = (what: string) => new UsageError(`${file}: entry ${i + 1}: ${what}`);
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw bad('must be an object');
    for (const field of ['modelId', 'type', 'path'] as const) if (typeof e[field] !== 'string' || !e[field]) throw bad(`"${field}" must be a non-empty string`);
    if (e.key !== undefined && typeof e.key !== 'string') throw bad('"key" must be a string');
    const modelId = e.modelId as string;
    if (seen.has(modelId)) throw bad(`model id "${modelId}" appears twice`);
    seen.add(modelId);
    return { modelId, type: e.type as string, path: e.path as string, key: e.key as string | undefined };
  });
}

async function registerFile(c: Clients, file: string, load: boolean, concurrency: number, io: Io): Promise<number> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const entries = parseModelFile(text, file);
  const progress = new Progress(entries.length, io.err);
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const e = entries[next++];
      try {
        const info = await call(c, `registerModel ${e.modelId}`, c.management.registerModel.bind(c.management), {
          modelId: e.modelId, modelInfo: { type: e.type, path: e.path, key: e.key ?? '' }, loadNow: load, sync: load, lastUsedTime: 0,
        });
        if (info.status === ModelStatusInfo_ModelStatus.LOADING_FAILED) failures.push(`${e.modelId}: loading failed: ${info.errors.join('; ')}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      progress.tick(failures.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, entries.length) }, worker));
  progress.done();
  io.out.write(`registered ${entries.length - failures.length} of ${entries.length} model(s)${failures.length ? `; ${failures.length} failed:` : ''}\n`);
  for (const f of failures) io.out.write(`  ${f}\n`);
  return failures.length > 0 ? 1 : 0;
}

/** A progress line on stderr: redrawn in place on a terminal, every tenth otherwise (so logs stay readable). */
class Progress {
  private count = 0;
  private lastDecile = -1;

  constructor(private readonly total: number, private readonly stream: NodeJS.WritableStream & { isTTY?: boolean }) {}

  tick(failed: number): void {
    this.count++;
    const line = `registering: ${this.count}/${this.total}${failed ? `, ${failed} failed` : ''}`;
    if (this.stream.isTTY) {
      const width = 30;
      const filled = Math.round((width * this.count) / this.total);
      this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}`);
      return;
    }
    const decile = Math.floor((10 * this.count) / this.total);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.stream.write(`${line}\n`);
    }
  }

  done(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }
}

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;
type OptionValues = Record<string, string | boolean | undefined>;

/** Parses flags (plus --mesh and --help), connects, runs, and turns errors into messages and exit codes. */
async function withClients(argv: readonly string[], usage: string, io: Io, spec: OptionSpec,
  run: (c: Clients, values: OptionValues, positionals: string[]) => Promise<number>): Promise<number> {
  let values: OptionValues;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: {
        ...spec,
        'mesh': { type: 'string' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'help': { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }) as { values: OptionValues; positionals: string[] });
  } catch (err) {
    io.err.write(`modelmesh: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    io.out.write(usage);
    return 0;
  }
  let c: Clients | undefined;
  try {
    c = clients(String(values.mesh ?? `127.0.0.1:${Ports.GRPC}`), channelCredentials(values));
    return await run(c, values, positionals);
  } catch (err) {
    io.err.write(`modelmesh: ${(err as Error).message}\n${err instanceof UsageError ? `\n${usage}` : ''}`);
    return err instanceof UsageError ? 2 : 1;
  } finally {
    c?.close();
  }
}
