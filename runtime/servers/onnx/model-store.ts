import { status } from '@grpc/grpc-js';
import { InferenceSession } from 'onnxruntime-node';
import type { InferenceModel } from './infer';
import {
  absoluteModelPath, diskBytesAt, locateModelFile, modelSizeOf, modelTypeProblem, parseModelKey,
} from './model-files';
import { specsOf } from './tensors';
import { deadlineExceeded, internal, invalidArgument, MeshError, notFound, toMeshError } from '../../src/errors';
import { LoadSlots } from '../shared/load-slots';

/** A loaded ONNX model: its session and what its graph declares. */
export interface OnnxModel extends InferenceModel {
  readonly session: InferenceSession;
  /** The .onnx file the session was created from. */
  readonly file: string;
  readonly sizeInBytes: number;
}

export interface LoadRequest {
  readonly modelId: string;
  readonly modelType: string;
  readonly modelPath: string;
  readonly modelKey: string;
}

export interface OnnxStoreOptions {
  readonly maxLoadingConcurrency: number;
  readonly loadTimeoutMs: number;
  readonly modelSizeMultiplier: number;
  readonly defaultModelSizeBytes: number;
  readonly modelRoot?: string;
}

/** Creates a session from a model file; replaceable so tests can make loads slow. */
export type SessionOpener = (file: string, modelId: string) => Promise<InferenceSession>;

export const openCpuSession: SessionOpener = (file, modelId) =>
  InferenceSession.create(file, { executionProviders: ['cpu'], logId: modelId });

interface Held {
  readonly model: OnnxModel;
  /** Inference calls using the session now; it is released only when this is back to 0. */
  inflight: number;
  retired: boolean;
  idle?: () => void;
}

interface PendingLoad {
  readonly promise: Promise<OnnxModel>;
  /** Aborted by unload, purge, close or the load timeout: the load stops waiting and releases any late session. */
  readonly abort: AbortController;
}

/**
 * The models this runtime holds and the loads in progress. Loads of one id share one attempt, distinct ids queue
 * for `maxLoadingConcurrency` slots, a load fails after `loadTimeoutMs`, an unload mid-load cancels it, and a
 * session is released only once no inference call is using it.
 */
export class OnnxModelStore {
  private readonly loaded = new Map<string, Held>();
  private readonly pending = new Map<string, PendingLoad>();
  private readonly releases = new Set<Promise<void>>();
  private readonly slots: LoadSlots;

  constructor(private readonly options: OnnxStoreOptions, private readonly log: (line: string) => void,
    private readonly open: SessionOpener = openCpuSession) {
    this.slots = new LoadSlots(options.maxLoadingConcurrency);
  }

  /** The loaded model with this id, if any (a model still loading is not returned). */
  get(modelId: string): OnnxModel | undefined {
    return this.loaded.get(modelId)?.model;
  }

  /** Runs `work` with the model held, so an unload meanwhile waits for it before releasing the session. */
  async use<T>(modelId: string, work: (model: OnnxModel) => Promise<T>): Promise<T> {
    const held = this.loaded.get(modelId);
    if (!held) throw notFound(`model ${modelId} is not loaded in this ONNX runtime`);
    held.inflight++;
    try {
      return await work(held.model);
    } finally {
      held.inflight--;
      if (held.retired && held.inflight === 0) held.idle?.();
    }
  }

  /** Loads a model, or returns it if it is loaded or already loading. Rejects with a MeshError. */
  load(request: LoadRequest): Promise<OnnxModel> {
    const { modelId, modelType, modelPath, modelKey } = request;
    // Refused before any attempt, so the mesh may tell "not for this runtime" from "tried and failed".
    if (!modelId) return Promise.reject(invalidArgument('loadModel: modelId is empty'));
    const problem = modelTypeProblem(modelType, parseModelKey(modelKey));
    if (problem) return Promise.reject(invalidArgument(`loadModel ${modelId}: ${problem}`));
    if (!modelPath) return Promise.reject(invalidArgument(`loadModel ${modelId}: modelPath is empty; it must name an .onnx file or a folder`));

    const existing = this.loaded.get(modelId)?.model ?? this.pending.get(modelId)?.promise;
    if (existing) return Promise.resolve(existing);

    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(deadlineExceeded(`model ${modelId} was not loaded within the load timeout of `
      + `${this.options.loadTimeoutMs} ms (--load-timeout-ms / LOADTIME_TIMEOUT)`)), this.options.loadTimeoutMs);
    timer.unref();
    const promise = this.attemptLoad(modelId, modelPath, abort.signal).finally(() => {
      clearTimeout(timer);
      if (this.pending.get(modelId)?.abort === abort) this.pending.delete(modelId);
    });
    this.pending.set(modelId, { promise, abort });
    return promise;
  }

  /**
   * Unloads a model; unknown ids succeed. A load in progress is cancelled first. Resolves once the session is
   * released, which waits for the inference calls still using it.
   */
  async unload(modelId: string): Promise<void> {
    const held = this.loaded.get(modelId);
    if (held) {
      this.loaded.delete(modelId);
      this.log(`unloading model ${modelId} (${held.model.sizeInBytes} bytes${held.inflight ? `, after ${held.inflight} call(s) in flight` : ''})`);
      await this.retire(held);
      return;
    }
    const pending = this.pending.get(modelId);
    if (pending) {
      this.pending.delete(modelId);
      pending.abort.abort(new MeshError(status.ABORTED, `load of model ${modelId} was cancelled by unloadModel`));
      this.log(`unloaded model ${modelId}: cancelled its load in progress`);
      await pending.promise.catch(() => undefined);
      return;
    }
    this.log(`unload of model ${modelId}: not loaded here, nothing to do`);
  }

  /** Drops every model and cancels every load; resolves when their sessions are released. */
  async purge(reason: string): Promise<void> {
    const held = [...this.loaded.values()];
    const pendingCount = this.pending.size;
    this.loaded.clear();
    for (const pending of this.pending.values()) pending.abort.abort(new MeshError(status.ABORTED, `load cancelled: ${reason}`));
    this.pending.clear();
    if (held.length + pendingCount > 0) {
      this.log(`purging ${held.length} loaded model(s) and cancelling ${pendingCount} load(s): ${reason}`);
    }
    for (const h of held) void this.retire(h);
    await Promise.all([...this.releases]);
  }

  /** Stops for good: no more loads, every session released. */
  close(): Promise<void> {
    this.slots.close(new MeshError(status.UNAVAILABLE, 'the ONNX runtime is shutting down', true));
    return this.purge('shutting down');
  }

  /** A quick estimate before loading: bytes on disk (else the key's disk_size_bytes) × multiplier, else the default. */
  async predictSize(modelPath: string, modelKey: string): Promise<number> {
    const bytes = await diskBytesAt(absoluteModelPath(modelPath, this.options.modelRoot)) ?? parseModelKey(modelKey).diskSizeBytes;
    return bytes === undefined ? this.options.defaultModelSizeBytes : modelSizeOf(bytes, this.options.modelSizeMultiplier);
  }

  /** Size of a loaded model; NOT_FOUND otherwise. */
  sizeOf(modelId: string): number {
    const held = this.loaded.get(modelId);
    if (!held) throw notFound(`model ${modelId} is not loaded in this ONNX runtime`);
    return held.model.sizeInBytes;
  }

  /** Releases a session once no call uses it; the caller has already removed it from `loaded`. */
  private retire(held: Held): Promise<void> {
    held.retired = true;
    const id = held.model.id;
    const release = (async () => {
      if (held.inflight > 0) await new Promise<void>((resolve) => { held.idle = resolve; });
      await held.model.session.release();
    })().catch((err: unknown) => {
      this.log(`releasing the session of model ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
    }).finally(() => { this.releases.delete(release); });
    this.releases.add(release);
    return release;
  }

  private async attemptLoad(modelId: string, modelPath: string, signal: AbortSignal): Promise<OnnxModel> {
    const queuedAt = Date.now();
    const path = absoluteModelPath(modelPath, this.options.modelRoot);
    try {
      const release = await this.slots.acquire(signal);
      try {
        this.log(`loading model ${modelId} from ${path} (load slots busy: ${this.slots.busy}/${this.slots.limit}, ${this.slots.queued} queued)`);
        const { file, diskBytes } = await locateModelFile(path);
        if (signal.aborted) throw signal.reason;
        const opening = this.open(file, modelId).catch((err: unknown) => {
          // onnxruntime's own words say what is wrong with the file; keep them whole.
          throw internal(`onnxruntime could not load ${file}: ${err instanceof Error ? err.message : String(err)}`, err);
        });
        const session = await untilAborted(opening, signal, (late) => {
          this.log(`model ${modelId}: releasing a session that finished opening after its load was abandoned`);
          late.release().catch(() => undefined);
        });
        const model: OnnxModel = {
          id: modelId,
          file,
          session,
          inputs: specsOf(session.inputMetadata),
          outputs: specsOf(session.outputMetadata),
          sizeInBytes: modelSizeOf(diskBytes, this.options.modelSizeMultiplier),
        };
        this.loaded.set(modelId, { model, inflight: 0, retired: false });
        this.log(`loaded model ${modelId} from ${file}: ${diskBytes} bytes on disk, size ${model.sizeInBytes}, `
          + `in ${Date.now() - queuedAt} ms; inputs ${model.inputs.map((s) => s.name).join(', ')}; outputs ${model.outputs.map((s) => s.name).join(', ')}`);
        return model;
      } finally {
        release();
      }
    } catch (err) {
      const error = toMeshError(signal.aborted ? signal.reason : err);
      this.log(`failed to load model ${modelId} from ${path}: ${error.message}`);
      throw error;
    }
  }
}

/** `work`'s result, unless `signal` aborts first; a result arriving after that goes to `onLate`. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal, onLate: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then((value) => {
      signal.removeEventListener('abort', onAbort);
      if (settled) {onLate(value);} else {
        settled = true;
        resolve(value);
      }
    }, (err: unknown) => {
      signal.removeEventListener('abort', onAbort);
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
  });
}
