import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { internal, invalidArgument, MeshError, notFound, toMeshError } from '../../src/errors';
import { LoadSlots } from '../shared/load-slots';

/** The model type this runtime serves; loadModel refuses any other. */
export const EXAMPLE_MODEL_TYPE = 'example';

/** A loaded example model: the text of its file. */
export interface LoadedModel {
  readonly id: string;
  readonly path: string;
  /** The file's bytes; ModelInfer appends the input to these. */
  readonly bytes: Buffer;
  /** The same bytes as UTF-8 text; Echo appends to this. */
  readonly text: string;
  readonly sizeInBytes: number;
}

export interface LoadRequest {
  readonly modelId: string;
  readonly modelType: string;
  readonly modelPath: string;
}

export interface ModelStoreOptions {
  readonly loadDelayMs: number;
  readonly maxLoadingConcurrency: number;
  /** Size reported for every model; undefined means the file's size. */
  readonly modelSizeBytes?: number;
  readonly defaultModelSizeBytes: number;
  /** Loads of paths containing this text fail too (one runtime refusing what others accept). */
  readonly failPath?: string;
}

interface PendingLoad {
  readonly promise: Promise<LoadedModel>;
  /** Aborted by unload, purge or close: the load stops waiting and never stores its model. */
  readonly abort: AbortController;
}

/**
 * The models this runtime holds and the loads in progress. Loads of one id share one attempt (idempotent),
 * distinct ids queue for `maxLoadingConcurrency` slots, and an unload that arrives mid-load cancels the load
 * (the mesh sends unloadModel right after giving up on a load, and must not find the model loaded later).
 */
export class ModelStore {
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly pending = new Map<string, PendingLoad>();
  private readonly slots: LoadSlots;

  constructor(private readonly options: ModelStoreOptions, private readonly log: (line: string) => void) {
    this.slots = new LoadSlots(options.maxLoadingConcurrency);
  }

  /** The loaded model with this id, if any (a model still loading is not returned). */
  get(modelId: string): LoadedModel | undefined {
    return this.loaded.get(modelId);
  }

  /** Loads a model, or returns it if it is loaded or already loading. Rejects with a MeshError. */
  load(request: LoadRequest): Promise<LoadedModel> {
    const { modelId, modelType, modelPath } = request;
    // Refused before any attempt, so the mesh may tell "not for this runtime" from "tried and failed".
    if (!modelId) return Promise.reject(invalidArgument('loadModel: modelId is empty'));
    if (modelType !== EXAMPLE_MODEL_TYPE) {
      return Promise.reject(invalidArgument(
        `loadModel ${modelId}: model type "${modelType}" is not served by the example runtime; it serves type "${EXAMPLE_MODEL_TYPE}"`));
    }
    if (!modelPath) return Promise.reject(invalidArgument(`loadModel ${modelId}: modelPath is empty; it must name the model's file`));

    const existing = this.loaded.get(modelId) ?? this.pending.get(modelId)?.promise;
    if (existing) return Promise.resolve(existing);

    const abort = new AbortController();
    const promise = this.attemptLoad(modelId, modelPath, abort.signal).finally(() => {
      if (this.pending.get(modelId)?.abort === abort) this.pending.delete(modelId);
    });
    this.pending.set(modelId, { promise, abort });
    return promise;
  }

  /**
   * Unloads a model. Unknown ids succeed (upstream's contract: return at once if the model is not there). A load in
   * progress is cancelled, and this resolves once it has stopped, so the model is not loaded afterwards.
   */
  async unload(modelId: string): Promise<void> {
    const model = this.loaded.get(modelId);
    if (model) {
      this.loaded.delete(modelId);
      this.log(`unloaded model ${modelId} (${model.sizeInBytes} bytes)`);
      return;
    }
    const pending = this.pending.get(modelId);
    if (pending) {
      this.pending.delete(modelId);
      pending.abort.abort(aborted(`load of model ${modelId} was cancelled by unloadModel`));
      this.log(`unloaded model ${modelId}: cancelled its load in progress`);
      await pending.promise.catch(() => undefined);
      return;
    }
    this.log(`unload of model ${modelId}: not loaded here, nothing to do`);
  }

  /** Drops every loaded model and cancels every load; runtimeStatus does this before answering READY. */
  purge(reason: string): void {
    const loadedCount = this.loaded.size;
    const pendingCount = this.pending.size;
    this.loaded.clear();
    for (const pending of this.pending.values()) pending.abort.abort(aborted(`load cancelled: ${reason}`));
    this.pending.clear();
    if (loadedCount + pendingCount > 0) {
      this.log(`purged ${loadedCount} loaded model(s) and cancelled ${pendingCount} load(s): ${reason}`);
    }
  }

  /** Stops for good: cancels loads, empties the queue and drops the models. */
  close(): void {
    this.slots.close(new MeshError(status.UNAVAILABLE, 'the example runtime is shutting down', true));
    this.purge('shutting down');
  }

  /**
   * A quick size estimate before loading: the configured size, else the file's size. When the file cannot be
   * examined the default size is the honest answer; loadModel will report the real problem.
   */
  async predictSize(modelPath: string): Promise<number> {
    if (this.options.modelSizeBytes !== undefined) return this.options.modelSizeBytes;
    try {
      return Math.max(1, (await stat(modelPath)).size);
    } catch {
      return this.options.defaultModelSizeBytes;
    }
  }

  /** Size of a loaded model; NOT_FOUND otherwise. */
  sizeOf(modelId: string): number {
    const model = this.loaded.get(modelId);
    if (!model) throw notFound(`model ${modelId} is not loaded in this example runtime`);
    return model.sizeInBytes;
  }

  private async attemptLoad(modelId: string, modelPath: string, signal: AbortSignal): Promise<LoadedModel> {
    const queuedAt = Date.now();
    try {
      const release = await this.slots.acquire(signal);
      try {
        const startedAt = Date.now();
        this.log(`loading model ${modelId} from ${modelPath} (load slots busy: ${this.slots.busy}/${this.slots.limit}, `
          + `${this.slots.queued} queued)`);
        if (this.options.loadDelayMs > 0) {
          // Unreferenced: a pending delay must not keep a shutting-down process alive.
          await delay(this.options.loadDelayMs, undefined, { signal, ref: false });
        }
        const model = await this.readModel(modelId, modelPath);
        if (signal.aborted) throw signal.reason;
        this.loaded.set(modelId, model);
        this.log(`loaded model ${modelId} from ${modelPath}: ${model.sizeInBytes} bytes in ${Date.now() - queuedAt} ms `
          + `(${startedAt - queuedAt} ms queued)`);
        return model;
      } finally {
        release();
      }
    } catch (err) {
      // An abort surfaces as the reason we gave it (or Node's AbortError from the delay): report that reason.
      const cause = signal.aborted ? signal.reason : err;
      const error = toMeshError(cause, `loadModel ${modelId}`);
      this.log(`failed to load model ${modelId} from ${modelPath}: ${error.message}`);
      throw error;
    }
  }

  private async readModel(modelId: string, modelPath: string): Promise<LoadedModel> {
    // INTERNAL, not FAILED_PRECONDITION/INVALID_ARGUMENT: these simulate a load that was attempted and failed,
    // which the mesh records as a load failure and retries on another instance.
    if (basename(modelPath).includes('fail')) {
      throw internal(`the example runtime refuses to load ${modelPath}: its file name contains "fail"`);
    }
    if (this.options.failPath && modelPath.includes(this.options.failPath)) {
      throw internal(`this example runtime refuses to load ${modelPath}: it contains "${this.options.failPath}" (--fail-path)`);
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(modelPath);
    } catch (err) {
      throw fileError(modelPath, err);
    }
    const sizeInBytes = this.options.modelSizeBytes ?? Math.max(1, bytes.length);
    return { id: modelId, path: modelPath, bytes, text: bytes.toString('utf8'), sizeInBytes };
  }
}

function aborted(message: string): MeshError {
  return new MeshError(status.ABORTED, message);
}

/** A missing file is NOT_FOUND; anything else wrong with it (a directory, no permission) is INVALID_ARGUMENT. */
function fileError(modelPath: string, err: unknown): MeshError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound(`model file ${modelPath} does not exist`);
  const reason = err instanceof Error ? err.message : String(err);
  return invalidArgument(`model file ${modelPath} cannot be read (${code ?? 'error'}): ${reason}`);
}
