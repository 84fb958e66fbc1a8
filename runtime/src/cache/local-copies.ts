import { status } from '@grpc/grpc-js';
import { forEachSliced } from '../concurrency';
import { MeshError, notFound, toMeshError, unavailable } from '../errors';
import type { LoadOutcome } from '../lifecycle/fail-fast';
import { LoadPriority, LoadQueue, RuntimeInfo, SpiClient } from '../loader';
import { Logger } from '../log';
import { LruCache } from './lru-cache';
import type { MeshMetrics } from '../metrics/mesh-metrics';
import type { Puller } from '../puller';
import { loadedCopies } from '../registry/model-state';
import { ModelRecord } from '../registry/records';
import { Registry, UNCHANGED } from '../registry/registry';

/**
 * The copies on this instance: loading them through the runtime (with eviction to make room), recording each
 * state change in the registry, and unloading them. Keeps the local LRU, the runtime and the registry in step.
 */

export interface RetryTarget {
  /** Instance to try next, or undefined when every candidate has failed. */
  readonly instanceId: string | undefined;
}

export interface LocalCopiesOptions {
  readonly selfId: string;
  readonly cache: LruCache;
  readonly spi: SpiClient;
  readonly queue: LoadQueue;
  readonly registry: Registry;
  readonly runtime: RuntimeInfo;
  readonly log: Logger;
  readonly failureExpiryMs: number;
  /**
   * A load started for a call waiting here is claimed in the registry (`loading`) only if still running after this
   * long (about one store round trip, a few times over): a quicker load writes only its outcome.
   */
  readonly claimDelayMs: number;
  /** Fetches each model to a local folder before loadModel and deletes it after unload; absent, the runtime fetches. */
  readonly puller?: Puller;
  readonly metrics: MeshMetrics;
  /** Told of every finished load here (the start-up fail-fast check counts them). */
  readonly onLoadOutcome?: (modelId: string, outcome: LoadOutcome) => void;
  readonly now?: () => number;
  /** Something changed that other instances should see in this instance's record. */
  readonly onChanged: () => void;
  /**
   * Picks where to retry a failed load, given the record as it will be after this failure; called inside the
   * registry update so the failure and the next attempt are written together.
   */
  readonly chooseRetryTarget: (modelId: string, afterFailure: ModelRecord) => string | undefined;
  /** Starts the load on the chosen instance (already recorded as loading there). */
  readonly dispatch: (instanceId: string, modelId: string, priority: LoadPriority) => void;
}

function withoutKey<V>(map: Readonly<Record<string, V>>, key: string): Record<string, V> {
  const { [key]: _removed, ...rest } = map;
  return rest;
}

export class LocalCopies {
  private readonly loading = new Map<string, Promise<void>>();
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly o: LocalCopiesOptions) {
    this.now = o.now ?? Date.now;
  }

  get cache(): LruCache {
    return this.o.cache;
  }

  /** Refuses new loads from now on (leaving); loads under way finish. */
  close(): void {
    this.closed = true;
  }

  /**
   * Loads `modelId` here (or joins the load already under way). Resolves once loaded; rejects with the runtime's
   * error after recording the failure and handing the model to the next candidate.
   */
  loadHere(modelId: string, priority: LoadPriority): Promise<void> {
    const running = this.loading.get(modelId);
    if (running) return running;
    const existing = this.o.cache.get(modelId);
    // Already loaded here: the placer has just claimed it as loading, so the registry must hear it is loaded.
    if (existing?.state === 'loaded') return this.markRegisteredLoaded(modelId, existing.loadedAt);
    if (this.closed) return Promise.reject(unavailable(`instance ${this.o.selfId} is leaving the mesh and takes no new loads`));
    const load = this.load(modelId, priority).finally(() => {
      this.loading.delete(modelId);
      // Calls waiting for this load look again: the copy they waited for is loaded, or no longer coming.
      this.o.registry.models.recheck(modelId);
    });
    this.loading.set(modelId, load);
    return load;
  }

  /** Whether a load of `modelId` is under way here (from its dispatch, before the registry hears of it). */
  isLoading(modelId: string): boolean {
    return this.loading.has(modelId);
  }

  private async load(modelId: string, priority: LoadPriority): Promise<void> {
    const { registry, cache, spi, runtime, log, selfId } = this.o;
    const held = registry.models.get(modelId) ? { record: registry.models.get(modelId)! } : await registry.models.read(modelId);
    if (!held) throw notFound(`model ${modelId} is not registered`);
    const info = held.record;
    const claim = this.claimUnlessLoadedSoon(modelId);
    // Only a model's first load lacks a measured size. With the puller the registered path is remote, so the runtime
    // cannot predict from it; the load corrects the size. When the default size fits without evicting, the load
    // starts at once on that reservation and the prediction, asked alongside, grows it if it says more.
    const prediction = info.size === undefined && !this.o.puller
      ? spi.predictSize(modelId, info.type, info.path ?? '', info.key ?? '')
      : undefined;
    const predictAlongside = prediction !== undefined && cache.free >= runtime.defaultModelSize;
    const size = info.size ?? (predictAlongside ? undefined : await prediction) ?? runtime.defaultModelSize;

    const started = this.now();
    const victims = this.makeRoom(modelId, size, started);
    cache.addLoading(modelId, size, started);
    this.o.onChanged();
    if (predictAlongside) {
      void prediction.then((predicted) => {
        const copy = cache.get(modelId);
        if (predicted === undefined || copy?.state !== 'loading' || predicted <= copy.size) return;
        const more = this.makeRoom(modelId, predicted - copy.size, started);
        cache.resize(modelId, predicted);
        this.o.onChanged();
        return Promise.all(more.map((victim) => this.release(victim, `making room for ${modelId}`)));
      });
    }
    await Promise.all(victims.map((victim) => this.release(victim, `making room for ${modelId}`)));

    log.info('loading model', { modelId, size, priority });
    let loadedSize: number;
    let maxConcurrency = 0;
    const enqueued = performance.now();
    let dequeued = enqueued;
    try {
      const response = await this.o.queue.run(priority, async () => {
        dequeued = performance.now();
        const { path, key } = await this.fetch(modelId, info.path ?? '', info.key ?? '');
        return spi.load(modelId, info.type, path, key, runtime.loadTimeoutMs);
      });
      loadedSize = response.sizeInBytes || await spi.modelSize(modelId) || size;
      if (runtime.limitModelConcurrency) maxConcurrency = response.maxConcurrency;
    } catch (err) {
      this.o.metrics.load(modelId, { queueMs: dequeued - enqueued, loadMs: performance.now() - dequeued, ok: false });
      await claim.settle();
      await this.recordFailure(modelId, toMeshError(err), priority);
      throw toMeshError(err);
    }
    this.o.metrics.load(modelId, { queueMs: dequeued - enqueued, loadMs: performance.now() - dequeued, ok: true, sizeBytes: loadedSize });
    const loadedAt = this.now();
    this.o.onLoadOutcome?.(modelId, { ok: true, loadedElsewhere: false, transient: false });
    const loadedCopy = cache.markLoaded(modelId, loadedSize, loadedAt);
    if (loadedCopy) loadedCopy.maxConcurrency = maxConcurrency;
    // A copy bigger than its reservation (no prediction, or a low one) must not leave the runtime over capacity.
    const overflow = this.makeRoom(modelId, cache.used - cache.capacity, loadedAt);
    this.o.onChanged();
    // Calls waiting here for this copy may use it now; the registry hears of it next, for the other instances.
    registry.models.recheck(modelId);
    for (const victim of overflow) void this.release(victim, `making room for ${modelId}, bigger than predicted`);
    await claim.settle();
    const after = await registry.models.update(modelId, (r) => (r ? {
      ...r,
      copies: { ...r.copies, [selfId]: { state: 'loaded', since: loadedAt } },
      failures: withoutKey(r.failures, selfId),
      size: loadedSize,
      lastUsed: Math.max(r.lastUsed, loadedAt),
    } : UNCHANGED));
    if (!after) {
      log.info('model was unregistered while loading; unloading it', { modelId });
      await this.unloadLocal(modelId);
      throw notFound(`model ${modelId} was unregistered while it loaded`);
    }
    log.info('loaded model', { modelId, size: loadedSize, ms: loadedAt - started });
  }

  /**
   * Records this instance's claim on the model (`loading`) if the load is still running after `claimDelayMs`: the
   * claim keeps other instances from placing a second copy meanwhile, which a load done within a store round trip
   * never needed, so a quick load writes only its outcome. `settle` cancels a claim not yet sent and otherwise waits
   * for it, so the outcome lands after it. A model unregistered meanwhile is unloaded when the outcome is written.
   */
  private claimUnlessLoadedSoon(modelId: string): { settle(): Promise<void> } {
    const { registry, log, selfId } = this.o;
    let written: Promise<void> | undefined;
    const claim = () => {
      written = registry.models.update(modelId, (r) => (!r || r.copies[selfId]
        ? UNCHANGED
        : { ...r, copies: { ...r.copies, [selfId]: { state: 'loading', since: this.now() } } }))
        .then(() => undefined, (err: Error) => log.warn('could not record the load claim', { modelId, err }));
    };
    // 0: the claim goes out at once, alongside the load.
    if (this.o.claimDelayMs === 0) claim();
    const timer = this.o.claimDelayMs > 0 ? setTimeout(claim, this.o.claimDelayMs) : undefined;
    return {
      settle: () => {
        clearTimeout(timer);
        return written ?? Promise.resolve();
      },
    };
  }

  /**
   * Takes idle copies out of the LRU until `bytes` more fit (the caller unloads them): copies loaded elsewhere too
   * go before the last copy of anything. Choosing victims and reserving space happen with no await between, so
   * concurrent loads never count the same free bytes or pick the same victim.
   */
  private makeRoom(modelId: string, bytes: number, now: number): string[] {
    const { registry, cache } = this.o;
    const hasOtherCopies = (copy: { modelId: string }) => {
      const record = registry.models.get(copy.modelId);
      return record !== undefined && loadedCopies(record).length > 1;
    };
    const planned = cache.planEviction(bytes, new Set([modelId]), hasOtherCopies).victims;
    for (const victim of planned) {
      cache.remove(victim.modelId);
      if (victim.loadedAt > 0) this.o.metrics.evicted(victim.modelId, now - victim.loadedAt);
    }
    return planned.map((v) => v.modelId);
  }

  /** Where the runtime finds the model: pulled to a local folder first when the puller is on. */
  private async fetch(modelId: string, path: string, key: string): Promise<{ path: string; key: string }> {
    if (!this.o.puller) return { path, key };
    const pulled = await this.o.puller.pull(modelId, path, key);
    return { path: pulled.localPath, key: pulled.modelKey };
  }

  /** Unloads from the runtime, then deletes the pulled files (the runtime may read them until it has unloaded). */
  private async unloadFromRuntime(modelId: string): Promise<void> {
    const started = performance.now();
    let ok = false;
    try {
      await this.o.spi.unload(modelId);
      ok = true;
    } finally {
      this.o.metrics.unload(modelId, performance.now() - started, ok);
      await this.removeFiles(modelId);
    }
  }

  private async removeFiles(modelId: string): Promise<void> {
    await this.o.puller?.remove(modelId).catch((err: Error) => this.o.log.warn('could not delete pulled model files', { modelId, err }));
  }

  private async recordFailure(modelId: string, err: MeshError, priority: LoadPriority): Promise<void> {
    const { registry, cache, log, selfId } = this.o;
    cache.remove(modelId);
    this.o.onChanged();
    // Runtimes may hold partial state after a failed or cancelled load: always unload.
    this.unloadFromRuntime(modelId).catch((e: Error) => log.warn('unload after failed load failed', { modelId, err: e }));
    const time = this.now();
    const message = err.message;
    let next: string | undefined;
    let loadedElsewhere = false;
    await registry.models.update(modelId, (r) => {
      if (!r) return UNCHANGED;
      loadedElsewhere = loadedCopies(r).some((id) => id !== selfId);
      const failures = Object.fromEntries(Object.entries(r.failures).filter(([, f]) => time - f.time < this.o.failureExpiryMs));
      const afterFailure: ModelRecord = { ...r, copies: withoutKey(r.copies, selfId), failures: { ...failures, [selfId]: { time, message } } };
      next = this.o.chooseRetryTarget(modelId, afterFailure);
      if (next === undefined) return afterFailure;
      return { ...afterFailure, copies: { ...afterFailure.copies, [next]: { state: 'loading', since: time } } };
    });
    log.warn('model load failed', { modelId, err: message, retryOn: next ?? null });
    // Unreachable model server or storage, or a cancelled load, says nothing about whether this instance is sound.
    const transient = err.retryable || err.code === status.CANCELLED || err.code === status.ABORTED;
    this.o.onLoadOutcome?.(modelId, { ok: false, loadedElsewhere, transient });
    if (next !== undefined) this.o.dispatch(next, modelId, priority);
  }

  /** Removes a copy the runtime no longer has (or should not keep): LRU now, then registry and runtime. */
  async drop(modelId: string, reason: string): Promise<void> {
    if (!this.o.cache.remove(modelId)) return;
    this.o.onChanged();
    await this.release(modelId, reason);
  }

  /** Finishes an eviction whose space is already freed in the LRU: registry first (so nobody routes to it), then the runtime. */
  private async release(modelId: string, reason: string): Promise<void> {
    this.o.log.info('evicting model', { modelId, reason });
    await this.removeFromRegistry(modelId).catch((err: Error) => this.o.log.warn('could not remove evicted copy from the registry', { modelId, err }));
    try {
      await this.unloadFromRuntime(modelId);
    } catch (err) {
      this.o.log.warn('unload of evicted model failed', { modelId, err: err as Error });
    }
  }

  private async removeFromRegistry(modelId: string): Promise<void> {
    const { selfId } = this.o;
    await this.o.registry.models.update(modelId, (r) => (r && r.copies[selfId] ? { ...r, copies: withoutKey(r.copies, selfId) } : UNCHANGED));
  }

  /** Drops the local copy and unloads it from the runtime (the registry is the caller's business). */
  async unloadLocal(modelId: string): Promise<void> {
    if (!this.o.cache.remove(modelId)) return;
    this.o.onChanged();
    try {
      await this.unloadFromRuntime(modelId);
      this.o.log.info('unloaded model', { modelId });
    } catch (err) {
      this.o.log.warn('unload failed', { modelId, err: err as Error });
    }
  }

  /** A model was unregistered: its local copy goes too. */
  async forget(modelId: string): Promise<void> {
    await this.unloadLocal(modelId);
  }

  /**
   * Repairs drift between the registry and this instance: copies the registry claims here that the cache lacks
   * (a placer died between claiming and dispatching, or this process restarted) are removed after `graceMs`.
   */
  async reconcile(graceMs: number): Promise<number> {
    const { selfId, registry, cache } = this.o;
    const now = this.now();
    let repaired = 0;
    await forEachSliced(registry.models.entries(), async ([modelId, record]) => {
      const claimed = record.copies[selfId];
      if (!claimed || cache.has(modelId) || this.loading.has(modelId) || now - claimed.since < graceMs) return;
      await registry.models.update(modelId, (r) => (r && r.copies[selfId] && !cache.has(modelId)
        ? { ...r, copies: withoutKey(r.copies, selfId) }
        : UNCHANGED));
      repaired++;
    });
    // The other direction: copies loaded here that the registry lost (reaped while the store was unreachable and this
    // instance's record had expired) are registered again; copies of models no longer registered are unloaded.
    await forEachSliced(cache.list(), async (copy) => {
      if (copy.state !== 'loaded') return;
      const record = registry.models.get(copy.modelId);
      if (!record) {
        await this.forget(copy.modelId);
        repaired++;
      } else if (record.copies[selfId]?.state !== 'loaded') {
        await this.markRegisteredLoaded(copy.modelId, copy.loadedAt);
        repaired++;
      }
    });
    return repaired;
  }

  /** Makes the registry say this instance holds a loaded copy (it does). */
  private async markRegisteredLoaded(modelId: string, since: number): Promise<void> {
    const { selfId } = this.o;
    await this.o.registry.models.update(modelId, (r) => (r && r.copies[selfId]?.state !== 'loaded'
      ? { ...r, copies: { ...r.copies, [selfId]: { state: 'loaded', since } } }
      : UNCHANGED));
  }

  /**
   * The runtime lost every model (it crashed or restarted): forget all local copies and remove them from the
   * registry, without asking the runtime.
   */
  async forgetAll(): Promise<void> {
    const copies = this.o.cache.list();
    for (const copy of copies) this.o.cache.remove(copy.modelId);
    this.o.onChanged();
    await Promise.all(copies.map(async (c) => {
      await this.removeFromRegistry(c.modelId).catch(() => undefined);
      await this.removeFiles(c.modelId);
    }));
  }

  /** Unloads every copy and removes them from the registry (leaving the mesh). */
  async unloadAll(): Promise<void> {
    for (const copy of this.o.cache.list()) {
      await this.removeFromRegistry(copy.modelId).catch(() => undefined);
      await this.unloadLocal(copy.modelId);
    }
  }
}
