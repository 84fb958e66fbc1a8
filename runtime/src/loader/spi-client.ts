import { ChannelCredentials, Metadata, ServiceError, credentials, status } from '@grpc/grpc-js';
import {
  LoadModelResponse, ModelRuntimeClient, RuntimeStatusResponse, RuntimeStatusResponse_Status,
} from '../../../proto/gen/model-runtime';
import { RuntimeEndpoint } from '../config';
import { MeshError, toMeshError, unavailable } from '../errors';

/** gRPC target string for a runtime endpoint inside the pod. */
export function endpointTarget(endpoint: RuntimeEndpoint): string {
  return endpoint.kind === 'port' ? `127.0.0.1:${endpoint.port}` : `unix:${endpoint.path}`;
}

export function describeEndpoint(endpoint: RuntimeEndpoint): string {
  return endpoint.kind === 'port' ? `localhost port ${endpoint.port}` : `socket ${endpoint.path}`;
}

/** Everything the mesh needs from runtimeStatus, checked. */
export interface RuntimeInfo {
  readonly capacity: number;
  readonly maxLoadingConcurrency: number;
  readonly loadTimeoutMs: number;
  readonly defaultModelSize: number;
  readonly version: string;
  readonly limitModelConcurrency: boolean;
  readonly allowAnyMethod: boolean;
  readonly methods: ReadonlyMap<string, readonly number[]>;
}

const UNIT = 8192;

/** Checks a READY runtimeStatus answer and fills upstream's defaults. */
export function runtimeInfoFrom(response: RuntimeStatusResponse): RuntimeInfo {
  const defaultModelSize = Math.max(UNIT, response.defaultModelSizeInBytes || 0);
  const capacity = response.capacityInBytes;
  const minimum = Math.max(2 * defaultModelSize, Math.min(512 * 1024 * 1024, 10 * defaultModelSize));
  if (capacity < minimum) {
    throw new MeshError(status.FAILED_PRECONDITION,
      `runtime reports capacity ${capacity} bytes, less than the ${minimum} bytes needed for its default model size ${defaultModelSize}`);
  }
  const methods = new Map<string, readonly number[]>();
  for (const [name, info] of Object.entries(response.methodInfos ?? {})) methods.set(name, info.idInjectionPath ?? []);
  return {
    capacity,
    maxLoadingConcurrency: Math.max(1, response.maxLoadingConcurrency || 1),
    loadTimeoutMs: Math.max(100, response.modelLoadingTimeoutMs || 90_000),
    defaultModelSize,
    version: response.runtimeVersion,
    limitModelConcurrency: response.limitModelConcurrency,
    allowAnyMethod: response.allowAnyMethod || methods.size === 0,
    methods,
  };
}

const PREDICT_SIZE_TIMEOUT_MS = 500;
/** A model id no runtime holds, used to check that the runtime answers. */
const LIVENESS_PROBE_ID = '__modelmesh_liveness_probe__';
const MODEL_SIZE_TIMEOUT_MS = 30_000;
const UNLOAD_TIMEOUT_MS = 60_000;
const STATUS_TIMEOUT_MS = 5_000;

type UnaryCallback<Res> = (err: ServiceError | null, res: Res) => void;
type Unary<Req, Res> = (request: Req, metadata: Metadata, options: { deadline: number }, callback: UnaryCallback<Res>) => unknown;

/** The mesh's client for the runtime's SPI (mmesh.ModelRuntime). Errors come back as MeshError. */
export class SpiClient {
  private readonly client: ModelRuntimeClient;
  private predictSizeSupported = true;

  constructor(public readonly endpoint: RuntimeEndpoint, creds: ChannelCredentials = credentials.createInsecure()) {
    this.client = new ModelRuntimeClient(endpointTarget(endpoint), creds, {
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      // A model server restarts independently of the mesh: reconnect quickly.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
    });
  }

  private call<Req, Res>(method: Unary<Req, Res>, request: Req, timeoutMs: number, what: string): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(this.client, request, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(toMeshError(err, what));
        else resolve(res);
      });
    });
  }

  runtimeStatus(): Promise<RuntimeStatusResponse> {
    return this.call(this.client.runtimeStatus, {}, STATUS_TIMEOUT_MS, 'runtimeStatus');
  }

  /**
   * Polls runtimeStatus until the runtime is READY (it purges leftovers before saying so). UNAVAILABLE and
   * STARTING mean "not yet"; FAILING or any other error ends the wait.
   */
  async waitForReady(timeoutMs: number, onWaiting?: (why: string) => void, pollMs = 500): Promise<RuntimeInfo> {
    const deadline = Date.now() + timeoutMs;
    let lastWhy = 'no answer yet';
    for (;;) {
      try {
        const response = await this.runtimeStatus();
        if (response.status === RuntimeStatusResponse_Status.READY) return runtimeInfoFrom(response);
        if (response.status === RuntimeStatusResponse_Status.FAILING) {
          throw new MeshError(status.FAILED_PRECONDITION, `the model server at ${describeEndpoint(this.endpoint)} reports FAILING`);
        }
        lastWhy = 'runtime reports STARTING';
      } catch (err) {
        const e = toMeshError(err);
        if (e.code !== status.UNAVAILABLE && e.code !== status.DEADLINE_EXCEEDED) throw e;
        lastWhy = e.message;
      }
      if (Date.now() >= deadline) {
        throw unavailable(`the model server at ${describeEndpoint(this.endpoint)} was not READY within ${timeoutMs} ms (${lastWhy})`);
      }
      onWaiting?.(lastWhy);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  load(modelId: string, type: string, path: string, key: string, timeoutMs: number): Promise<LoadModelResponse> {
    return this.call(this.client.loadModel, { modelId, modelType: type, modelPath: path, modelKey: key }, timeoutMs, `loadModel ${modelId}`);
  }

  /** Unloads; an unknown model counts as unloaded. */
  async unload(modelId: string): Promise<void> {
    try {
      await this.call(this.client.unloadModel, { modelId }, UNLOAD_TIMEOUT_MS, `unloadModel ${modelId}`);
    } catch (err) {
      if ((err as MeshError).code !== status.NOT_FOUND) throw err;
    }
  }

  /** Predicted size, or undefined when the runtime does not implement predictModelSize or does not answer fast. */
  async predictSize(modelId: string, type: string, path: string, key: string): Promise<number | undefined> {
    if (!this.predictSizeSupported) return undefined;
    try {
      const res = await this.call(this.client.predictModelSize, { modelId, modelType: type, modelPath: path, modelKey: key },
        PREDICT_SIZE_TIMEOUT_MS, `predictModelSize ${modelId}`);
      return res.sizeInBytes > 0 ? res.sizeInBytes : undefined;
    } catch (err) {
      if ((err as MeshError).code === status.UNIMPLEMENTED) this.predictSizeSupported = false;
      return undefined;
    }
  }

  /**
   * Whether the runtime answers at all: any reply, even an error status, counts; only "unreachable" and "no answer in
   * time" do not. Asks the size of a model that does not exist, which no runtime acts on.
   */
  async answers(timeoutMs = 1_000): Promise<boolean> {
    try {
      await this.call(this.client.modelSize, { modelId: LIVENESS_PROBE_ID }, timeoutMs, 'modelSize (liveness)');
      return true;
    } catch (err) {
      const code = (err as MeshError).code;
      return code !== status.UNAVAILABLE && code !== status.DEADLINE_EXCEEDED;
    }
  }

  async modelSize(modelId: string): Promise<number | undefined> {
    try {
      const res = await this.call(this.client.modelSize, { modelId }, MODEL_SIZE_TIMEOUT_MS, `modelSize ${modelId}`);
      return res.sizeInBytes > 0 ? res.sizeInBytes : undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.client.close();
  }
}
