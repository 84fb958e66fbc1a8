import type { Readable } from 'node:stream';
import { PullError, storageFailure } from '../errors';
import { relativeObjectPath } from '../paths';
import type { ProviderContext, PullTarget } from './types';

/** An object found by a listing. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
}

/** The three operations an object store (S3, GCS, Azure) offers the puller. */
export interface ObjectStore {
  /** The object or prefix as a person reads it in a message, e.g. `s3://bucket/key`. */
  describe(key: string): string;
  /** Objects whose key starts with `prefix`. */
  list(prefix: string, signal: AbortSignal): AsyncIterable<ObjectInfo>;
  /** The object's content. */
  open(key: string, signal: AbortSignal): Promise<Readable | NodeJS.ReadableStream>;
}

interface Download {
  readonly key: string;
  readonly localPath: string;
}

/**
 * Upstream's rule for which listed objects belong to a target: empty objects and folder markers are skipped, and a
 * prefix without a trailing slash matches only itself or what lies below it (`models/mnist` is not `models/mnist2`).
 */
function belongs(object: ObjectInfo, prefix: string): boolean {
  if (object.size === 0 || object.key.endsWith('/')) return false;
  return prefix.endsWith('/') || prefix === '' || object.key === prefix || object.key.startsWith(`${prefix}/`);
}

async function resolveTargets(ctx: ProviderContext, store: ObjectStore, targets: readonly PullTarget[]): Promise<Download[]> {
  const downloads: Download[] = [];
  for (const target of targets) {
    const found: ObjectInfo[] = [];
    try {
      for await (const object of store.list(target.remotePath, ctx.signal)) if (belongs(object, target.remotePath)) found.push(object);
    } catch (err) {
      throw storageFailure(err, ctx.storageKey, store.describe(target.remotePath), ctx.secrets);
    }
    if (!found.length) {
      const object = store.describe(target.remotePath);
      throw new PullError('not-found', `storage key '${ctx.storageKey}': ${object}: not found: no object or folder with this name`,
        ctx.storageKey, object);
    }
    for (const object of found) {
      const rest = object.key.slice(target.remotePath.length);
      // The target itself is one object: it takes the target's local name; objects below a prefix keep their layout.
      const localPath = rest === '' ? target.localName : `${target.localName}/${relativeObjectPath(rest, object.key)}`;
      downloads.push({ key: object.key, localPath });
    }
  }
  return downloads;
}

/** Lists each target, then downloads every object into staging, `settings.concurrency` at a time. */
export async function pullObjects(ctx: ProviderContext, store: ObjectStore, targets: readonly PullTarget[]): Promise<void> {
  const downloads = await resolveTargets(ctx, store, targets);
  ctx.log.debug('objects to download', { count: downloads.length });
  // The first failure stops the other workers instead of letting them fill the disk for nothing.
  const stop = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stop.signal]);
  let failure: unknown;
  let next = 0;
  const worker = async () => {
    while (next < downloads.length && failure === undefined) {
      const d = downloads[next++];
      try {
        const body = await store.open(d.key, signal);
        await ctx.staging.write(d.localPath, body, signal);
      } catch (err) {
        if (failure === undefined) {
          failure = err instanceof PullError ? err
            : ctx.signal.aborted ? new PullError('aborted', `storage key '${ctx.storageKey}': ${store.describe(d.key)}: pull timed out or was cancelled`, ctx.storageKey, store.describe(d.key))
              : storageFailure(err, ctx.storageKey, store.describe(d.key), ctx.secrets);
          stop.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(ctx.settings.concurrency, downloads.length)) }, worker));
  if (failure !== undefined) throw failure;
}
