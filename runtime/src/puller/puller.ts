import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log';
import { PullError, secretsOf, storageFailure } from './errors';
import { Staging, diskSize } from './local';
import { isStorageUri, parseModelKey, parseStorageUri, rewriteModelKey } from './model-key';
import { checkModelId, checkRemotePath, joinInside, localNameOf } from './paths';
import type { ProviderSettings, PullTarget, StorageProvider } from './providers/types';
import { resolveStorage } from './storage-config';

export interface PullerOptions {
  /** The mounted `storage-config` secret: one JSON file per storage key (`STORAGE_CONFIG_DIR`, `/storage-config`). */
  readonly storageConfigDir: string;
  /** Where models are pulled to, one folder per model id (`ROOT_MODEL_DIR`, `/models`). */
  readonly rootModelDir: string;
  /** Where PVCs are mounted, one folder per claim (`/pvc_mounts`). */
  readonly pvcMountsDir: string;
  readonly log: Logger;
  /** A pull that takes longer fails with DEADLINE_EXCEEDED. @default 900000 (upstream's 15 minutes) */
  readonly timeoutMs?: number;
  /** Attempts per storage request, first try included. @default 3 */
  readonly attempts?: number;
  /** Objects of a folder downloaded at once. @default 4 */
  readonly concurrency?: number;
  /** How a PVC model reaches the model folder. @default 'symlink' (as upstream) */
  readonly pvcMode?: 'symlink' | 'copy';
}

export interface PullOptions {
  /** Cancels the pull (for example when the load it serves is abandoned). */
  readonly signal?: AbortSignal;
}

export interface PullResult {
  /** The local file or folder the runtime loads: `<rootModelDir>/<modelId>/<basename of the path>`. */
  readonly localPath: string;
  /** The model key for the runtime: storage fields removed, `disk_size_bytes` added, `schema_path` made local. */
  readonly modelKey: string;
  /** Bytes on disk (a PVC link counts what it points at). */
  readonly diskSizeBytes: number;
  /** The storage key used, or the default key tried. */
  readonly storageKey: string;
  /** The storage type used. */
  readonly type: string;
}

export interface Puller {
  /**
   * Pulls a model before loadModel. `modelPath` is a path inside the storage entry or a storage URI (`s3://`, `gs://`,
   * `pvc://`, `https://<account>.blob.core.windows.net/…`, `http(s)://…`); `modelKey` is the model key JSON.
   * Fails with a PullError naming the storage key and the object; nothing is left behind on failure.
   */
  pull(modelId: string, modelPath: string, modelKey: string, options?: PullOptions): Promise<PullResult>;
  /** Deletes the model's local folder (after unload). Absent folders are fine. */
  remove(modelId: string): Promise<void>;
  /** Deletes everything below rootModelDir: at start-up, when the runtime has just purged its models. */
  removeAll(): Promise<void>;
}

/** A model path for messages: a URI loses its userinfo and query (either may carry a token). */
function displayPath(modelPath: string): string {
  if (!isStorageUri(modelPath)) return modelPath;
  try {
    const u = new URL(modelPath);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return modelPath.replace(/[?#].*$/, '');
  }
}

/** Providers load on first use: the three cloud SDKs take about a second to require, and most meshes use one. */
const PROVIDERS: Readonly<Record<string, () => Promise<StorageProvider>>> = {
  s3: async () => (await import('./providers/s3')).s3Provider,
  gcs: async () => (await import('./providers/gcs')).gcsProvider,
  azure: async () => (await import('./providers/azure')).azureProvider,
  http: async () => (await import('./providers/http')).httpProvider,
  pvc: async () => (await import('./providers/pvc')).pvcProvider,
};

/** Creates a puller. Storage-config is read on every pull, so rotated secrets apply to the next one. */
export function createPuller(options: PullerOptions): Puller {
  const log = options.log.child({ component: 'puller' });
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  const settings: ProviderSettings = {
    pvcMountsDir: options.pvcMountsDir,
    pvcMode: options.pvcMode ?? 'symlink',
    attempts: Math.max(1, options.attempts ?? 3),
    concurrency: Math.max(1, options.concurrency ?? 4),
  };
  // Work on one model id runs one at a time: a remove never races the pull it follows, nor two pulls each other.
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(modelId: string, work: () => Promise<T>): Promise<T> => {
    const previous = queues.get(modelId) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.then(() => undefined, () => undefined);
    queues.set(modelId, settled);
    void settled.then(() => { if (queues.get(modelId) === settled) queues.delete(modelId); });
    return run;
  };

  const pullNow = async (modelId: string, modelPath: string, modelKeyText: string, pullOptions: PullOptions): Promise<PullResult> => {
    const started = Date.now();
    const key = parseModelKey(modelKeyText);
    let path = modelPath;
    let params = key.storageParams;
    if (isStorageUri(modelPath)) {
      const location = parseStorageUri(modelPath);
      path = location.path;
      // As in modelmesh-serving, what the URI says wins over storage_params.
      params = { ...params, ...location.params };
    }
    checkRemotePath(path, 'model path');
    if (key.schemaPath !== undefined) checkRemotePath(key.schemaPath, 'schema path');

    const storage = await resolveStorage({
      storageConfigDir: options.storageConfigDir, storageKey: key.storageKey, params, legacyBucket: key.bucket,
    });
    const loadProvider = Object.hasOwn(PROVIDERS, storage.type) ? PROVIDERS[storage.type] : undefined;
    if (!loadProvider) {
      throw new PullError('invalid-request', `storage key '${storage.storageKey}': unsupported storage type '${storage.type}' (supported: ${Object.keys(PROVIDERS).join(', ')})`,
        storage.storageKey);
    }

    const provider = await loadProvider();

    const modelName = localNameOf(path);
    const targets: PullTarget[] = [{ remotePath: path, localName: modelName }];
    let schemaName: string | undefined;
    if (key.schemaPath !== undefined) {
      schemaName = localNameOf(key.schemaPath);
      if (schemaName === modelName) schemaName = '_schema.json';
      targets.push({ remotePath: key.schemaPath, localName: schemaName });
    }

    const modelDir = joinInside(options.rootModelDir, modelId);
    const secrets = secretsOf(storage.config);
    let staging: Staging;
    try {
      await mkdir(options.rootModelDir, { recursive: true });
      staging = await Staging.create(modelDir);
    } catch (err) {
      throw storageFailure(err, storage.storageKey, modelDir, secrets);
    }
    const signals = [AbortSignal.timeout(timeoutMs), ...(pullOptions.signal ? [pullOptions.signal] : [])];
    const signal = AbortSignal.any(signals);
    const pullLog = log.child({ modelId, storageKey: storage.storageKey, type: storage.type });
    try {
      await provider({ storageKey: storage.storageKey, config: storage.config, secrets, staging, signal, log: pullLog, settings }, targets);
      if (signal.aborted) throw signal.reason;
      await staging.commit(targets.map((t) => t.localName));
    } catch (err) {
      await staging.discard().catch(() => undefined);
      // After the deadline or a cancel, whatever the SDK reported, the cause is the abort.
      if (signal.aborted) {
        const why = pullOptions.signal?.aborted ? 'was cancelled' : `timed out after ${timeoutMs} ms`;
        throw new PullError('aborted', `storage key '${storage.storageKey}': pull of '${displayPath(modelPath)}' ${why}`,
          storage.storageKey, displayPath(modelPath));
      }
      throw storageFailure(err, storage.storageKey, displayPath(modelPath), secrets);
    }

    const localPath = join(modelDir, modelName);
    const diskSizeBytes = await diskSize(localPath).catch((err: unknown) => {
      // Upstream also loads without a size when it cannot be measured; the runtime then predicts one.
      pullLog.warn('could not measure the pulled model', { error: (err as Error).message });
      return 0;
    });
    const rewritten = rewriteModelKey(key, diskSizeBytes, schemaName === undefined ? undefined : join(modelDir, schemaName));
    pullLog.info('model pulled', { localPath, bytes: diskSizeBytes, ms: Date.now() - started });
    return { localPath, modelKey: rewritten, diskSizeBytes, storageKey: storage.storageKey, type: storage.type };
  };

  return {
    pull(modelId, modelPath, modelKey, pullOptions = {}) {
      try {
        checkModelId(modelId);
      } catch (err) {
        return Promise.reject(err);
      }
      return serial(modelId, () => pullNow(modelId, modelPath, modelKey, pullOptions));
    },
    remove(modelId) {
      try {
        checkModelId(modelId);
      } catch (err) {
        return Promise.reject(err);
      }
      return serial(modelId, async () => {
        // rm does not follow links: a PVC model's link goes, the volume's files stay.
        await rm(joinInside(options.rootModelDir, modelId), { recursive: true, force: true });
        log.debug('model files removed', { modelId });
      });
    },
    async removeAll() {
      const entries = await readdir(options.rootModelDir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [];
        throw err;
      });
      await Promise.all(entries.map((name) => rm(join(options.rootModelDir, name), { recursive: true, force: true })));
      if (entries.length > 0) log.info('removed model files left from an earlier run', { count: entries.length });
    },
  };
}
