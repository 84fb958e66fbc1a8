import type { Logger } from '../../log';
import { PullError } from '../errors';
import type { Staging } from '../local';
import type { StorageEntry } from '../storage-config';

/** One thing to pull: a path inside the storage and the name it gets in the model folder. */
export interface PullTarget {
  /** Object key or prefix, PVC path or URL path. */
  readonly remotePath: string;
  /** Name of the file or folder created in `<rootModelDir>/<modelId>/`. */
  readonly localName: string;
}

/** Settings of the puller that providers use. */
export interface ProviderSettings {
  /** Where PVCs are mounted: `<pvcMountsDir>/<claim>/`. */
  readonly pvcMountsDir: string;
  /** PVC models are linked (upstream's behaviour) or copied. */
  readonly pvcMode: 'symlink' | 'copy';
  /** Attempts per storage request (SDK retries included). */
  readonly attempts: number;
  /** Objects downloaded at once for a folder. */
  readonly concurrency: number;
}

/** What a provider gets for one pull. */
export interface ProviderContext {
  /** The storage key used (for messages). */
  readonly storageKey: string;
  /** The entry after defaults and overrides; holds credentials, so it is never logged or put in a message. */
  readonly config: StorageEntry;
  /** Secret strings of `config`, scrubbed from every error text. */
  readonly secrets: readonly string[];
  readonly staging: Staging;
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly settings: ProviderSettings;
}

/** Pulls the targets into `ctx.staging` (each under its `localName`), or throws a PullError. */
export type StorageProvider = (ctx: ProviderContext, targets: readonly PullTarget[]) => Promise<void>;

/** A string field of the entry; a non-string value is a configuration error naming the field (never its value). */
export function stringField(ctx: Pick<ProviderContext, 'config' | 'storageKey'>, name: string, required = false): string | undefined {
  const value = ctx.config[name];
  if (value === undefined || value === null || value === '') {
    if (required) {
      throw new PullError('invalid-storage-config', `storage key '${ctx.storageKey}': "${name}" is required for type '${String(ctx.config.type)}'`, ctx.storageKey);
    }
    return value === '' ? '' : undefined;
  }
  if (typeof value !== 'string') {
    throw new PullError('invalid-storage-config', `storage key '${ctx.storageKey}': "${name}" must be a string`, ctx.storageKey);
  }
  return value;
}

/** The entry's endpoint URL with a scheme (upstream's SDKs default to https when none is given). */
export function endpointUrl(ctx: Pick<ProviderContext, 'config' | 'storageKey'>, field = 'endpoint_url'): string | undefined {
  const raw = stringField(ctx, field);
  if (!raw) return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  try {
    return new URL(withScheme).toString().replace(/\/+$/, '');
  } catch {
    throw new PullError('invalid-storage-config', `storage key '${ctx.storageKey}': "${field}" is not a valid URL`, ctx.storageKey);
  }
}
