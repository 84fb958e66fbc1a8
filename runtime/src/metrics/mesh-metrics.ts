import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The mesh's Prometheus metrics, with upstream ModelMesh's names, types, labels and buckets where the concept is the
 * same (so existing dashboards and alerts keep working), plus what is new here: retries by cause and calls by
 * destination. Callers record through the methods below; with metrics off every method does nothing.
 */

/** Upstream's latency buckets, in milliseconds. */
const MS_BUCKETS = [0.5, 1, 2, 5, 10, 20, 50, 75, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 60000, 120000, 300000];
const SIZE_BUCKETS = exponential(128, 4, 8);
const MODEL_SIZE_BUCKETS = exponential(256 * 1024, 4, 8);
const MINUTE = 60_000;
const AGE_BUCKETS = [0.5 * MINUTE, 5 * MINUTE, 15 * MINUTE, 60 * MINUTE, 4 * 60 * MINUTE, 12 * 60 * MINUTE,
  24 * 60 * MINUTE, 7 * 24 * 60 * MINUTE, 30 * 24 * 60 * MINUTE, 90 * 24 * 60 * MINUTE];

function exponential(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

/** This instance's cache, read when Prometheus scrapes. */
export interface InstanceGauges {
  readonly capacityBytes: number;
  readonly usedBytes: number;
  readonly models: number;
  /** Last use of the least recently used copy (ms since the epoch); 0 when nothing is loaded. */
  readonly lruTime: number;
}

/** Mesh-wide counts, exported only by the leader (as upstream does) so sums across pods stay right. */
export interface MeshGauges {
  readonly modelsLoaded: number;
  readonly modelsWithFailure: number;
  readonly modelsManaged: number;
}

/** One finished data-plane call, as the router saw it. */
export interface CallRecord {
  /** Full gRPC method, `package.Service/Method`. */
  readonly method: string;
  /** gRPC status code the caller received. */
  readonly code: number;
  readonly ms: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** `local` (this instance's model server), `peer` (forwarded), or `none` (failed before any attempt). */
  readonly destination: 'local' | 'peer' | 'none';
  readonly modelId?: string;
  readonly vModelId?: string;
}

/** Why an attempt moved on: connection failed, the copy answered UNAVAILABLE, or the runtime no longer had the model. */
export type RetryCause = 'connect' | 'unavailable' | 'not-found';

export interface MeshMetricsOptions {
  /** Add `modelId` / `vModelId` labels (upstream's `per_model_metrics`): one series per model, use with care. */
  readonly perModel: boolean;
  readonly instance: () => InstanceGauges;
  /** undefined when this instance is not the leader. */
  readonly mesh: () => MeshGauges | undefined;
  readonly now?: () => number;
}

/** gRPC code names for the `code` label, as upstream writes them. */
const CODE_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL',
  'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? String(code);
}

/** Upstream's default (`fq_names=false`): the method label is the part after the last `/`. */
function shortMethod(method: string): string {
  return method.slice(method.lastIndexOf('/') + 1);
}

export class MeshMetrics {
  /** Metrics off: nothing is recorded and nothing is served. */
  static disabled(): MeshMetrics {
    return new MeshMetrics(undefined);
  }

  static create(options: MeshMetricsOptions): MeshMetrics {
    return new MeshMetrics(options);
  }

  readonly registry: Registry | undefined;
  private readonly m: ReturnType<typeof defineMetrics> | undefined;
  private readonly perModel: boolean;

  private constructor(options: MeshMetricsOptions | undefined) {
    this.perModel = options?.perModel ?? false;
    if (!options) return;
    this.registry = new Registry();
    this.m = defineMetrics(this.registry, options);
  }

  /** One data-plane call that ended. */
  call(record: CallRecord): void {
    const m = this.m;
    if (!m) return;
    const labels = { method: shortMethod(record.method), code: codeName(record.code), ...this.modelLabels(record.modelId, record.vModelId) };
    m.apiRequest.observe(labels, record.ms);
    m.requestSize.observe(labels, record.requestBytes);
    m.responseSize.observe(labels, record.responseBytes);
    if (record.destination === 'local') m.invokeModel.observe(labels, record.ms);
    m.calls.inc({ destination: record.destination });
  }

  /** A call moved on to another copy after `cause`. */
  retry(cause: RetryCause): void {
    this.m?.retries.inc({ cause });
  }

  /** A call waited `ms` for its model to be loaded just in time. */
  cacheMiss(ms: number, modelId: string): void {
    this.m?.cacheMiss.observe(this.modelLabels(modelId), ms);
  }

  /** A load here finished: its wait in the loading queue and the runtime's load time, or its failure. */
  load(modelId: string, outcome: { queueMs: number; loadMs: number; ok: boolean; sizeBytes?: number }): void {
    const m = this.m;
    if (!m) return;
    const labels = this.modelLabels(modelId);
    m.loadingQueueDelay.observe(labels, outcome.queueMs);
    if (!outcome.ok) {
      m.loadFailure.inc();
      return;
    }
    m.loadModel.observe(labels, outcome.loadMs);
    if (outcome.sizeBytes !== undefined) m.loadedModelSize.observe(labels, outcome.sizeBytes);
  }

  unload(modelId: string, ms: number, ok: boolean): void {
    const m = this.m;
    if (!m) return;
    if (ok) m.unloadModel.observe(this.modelLabels(modelId), ms);
    else m.unloadFailure.inc();
  }

  /** A copy was evicted `ageMs` after it was loaded. */
  evicted(modelId: string, ageMs: number): void {
    this.m?.ageAtEviction.observe(this.modelLabels(modelId), ageMs);
  }

  /** The Prometheus text exposition. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    if (!this.registry) return { contentType: 'text/plain', body: '' };
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private modelLabels(modelId?: string, vModelId?: string): Record<string, string> {
    return this.perModel ? { modelId: modelId ?? '', vModelId: vModelId ?? '' } : {};
  }
}

function defineMetrics(registry: Registry, options: MeshMetricsOptions) {
  const registers = [registry];
  const model = options.perModel ? ['modelId', 'vModelId'] : [];
  const call = ['method', 'code', ...model];
  const histogram = (name: string, help: string, labelNames: string[], buckets: number[]) =>
    new Histogram({ name, help, labelNames, buckets, registers });
  const now = options.now ?? Date.now;
  const instanceGauge = (name: string, help: string, read: (g: InstanceGauges) => number) => new Gauge({
    name, help, registers, collect() { this.set(read(options.instance())); },
  });
  const meshGauge = (name: string, help: string, read: (g: MeshGauges) => number) => new Gauge({
    name,
    help,
    registers,
    collect() {
      const mesh = options.mesh();
      // Only the leader reports: a gauge without a value is left out of the scrape.
      if (mesh) this.set(read(mesh));
      else this.reset();
    },
  });
  const lruAgeSeconds = (g: InstanceGauges) => (g.lruTime > 0 ? Math.max(0, (now() - g.lruTime) / 1000) : 0);
  return {
    invokeModel: histogram('modelmesh_invoke_model_milliseconds', 'Calls served by this instance\'s model server, end to end', call, MS_BUCKETS),
    apiRequest: histogram('modelmesh_api_request_milliseconds', 'Data-plane calls received by this instance, end to end', call, MS_BUCKETS),
    requestSize: histogram('modelmesh_request_size_bytes', 'Request bytes of data-plane calls', call, SIZE_BUCKETS),
    responseSize: histogram('modelmesh_response_size_bytes', 'Response bytes of data-plane calls', call, SIZE_BUCKETS),
    cacheMiss: histogram('modelmesh_cache_miss_milliseconds', 'Time calls waited for a model to load (cache misses)', model, MS_BUCKETS),
    loadModel: histogram('modelmesh_loadmodel_milliseconds', 'Time to load a model here (pull and loadModel)', model, MS_BUCKETS),
    unloadModel: histogram('modelmesh_unloadmodel_milliseconds', 'Time to unload a model here', model, MS_BUCKETS),
    loadingQueueDelay: histogram('modelmesh_loading_queue_delay_milliseconds', 'Time loads waited in the loading queue', model, MS_BUCKETS),
    ageAtEviction: histogram('modelmesh_age_at_eviction_milliseconds', 'Age of copies when evicted', model, AGE_BUCKETS),
    loadedModelSize: histogram('modelmesh_loaded_model_size_bytes', 'Size of loaded models', model, MODEL_SIZE_BUCKETS),
    loadFailure: new Counter({ name: 'modelmesh_loadmodel_failure', help: 'Failed model loads on this instance', registers }),
    unloadFailure: new Counter({ name: 'modelmesh_unloadmodel_failure', help: 'Failed model unloads on this instance', registers }),
    retries: new Counter({ name: 'modelmesh_request_retries_total', help: 'Data-plane attempts retried on another copy, by cause', labelNames: ['cause'], registers }),
    calls: new Counter({
      name: 'modelmesh_requests_by_destination_total',
      help: 'Data-plane calls by where they were served: local model server, a peer, or none (failed before any attempt)',
      labelNames: ['destination'],
      registers,
    }),
    instance: [
      instanceGauge('modelmesh_instance_capacity_bytes', 'Model cache capacity of this instance', (g) => g.capacityBytes),
      instanceGauge('modelmesh_instance_used_bytes', 'Model cache bytes in use on this instance', (g) => g.usedBytes),
      instanceGauge('modelmesh_instance_used_bps', 'Model cache use in basis points (0-10000)',
        (g) => (g.capacityBytes > 0 ? Math.round((10_000 * g.usedBytes) / g.capacityBytes) : 0)),
      instanceGauge('modelmesh_instance_models_total', 'Model copies on this instance', (g) => g.models),
      instanceGauge('modelmesh_instance_lru_seconds', 'Last use of the least recently used copy, seconds since the epoch', (g) => g.lruTime / 1000),
      instanceGauge('modelmesh_instance_lru_age_seconds', 'Age of the least recently used copy\'s last use, in seconds', lruAgeSeconds),
    ],
    mesh: [
      meshGauge('modelmesh_models_loaded_total', 'Registered models with at least one loaded copy (leader only)', (g) => g.modelsLoaded),
      meshGauge('modelmesh_models_with_failure_total', 'Registered models with a recent load failure (leader only)', (g) => g.modelsWithFailure),
      meshGauge('modelmesh_models_managed_total', 'Registered models (leader only)', (g) => g.modelsManaged),
    ],
  };
}
