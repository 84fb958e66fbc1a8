import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PullError } from './errors';

/** One storage-config entry as JSON: `type` plus the type's fields (credentials included). */
export type StorageEntry = Record<string, unknown>;

/** The entry a pull uses: where it came from and what it says after overrides. */
export interface ResolvedStorage {
  /** The storage key read, or the default key tried (`default`, `default_<type>`). */
  readonly storageKey: string;
  /** Whether `storageKey` was found in storage-config (a missing default is allowed: params alone may suffice). */
  readonly found: boolean;
  readonly type: string;
  readonly config: StorageEntry;
}

/**
 * Storage keys are file names in the mounted secret. A name that is not one plain file name (a path, `..`, a
 * Kubernetes `..data` link) is refused so a model key can never make the puller read another file.
 */
function checkKeyName(key: string): void {
  if (!key || key.includes('/') || key.includes('\\') || key.includes('\0') || key.startsWith('.')) {
    throw new PullError('invalid-request', `storage key '${key.replace(/\0/g, '\\0')}' is not a valid storage-config key name`, key);
  }
}

/** Keys present in storage-config: the secret mount's visible files (its `..data` machinery is hidden). */
export async function listStorageKeys(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const keys: string[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    // Secret mounts expose keys as symlinks into `..data/`; stat follows them.
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) keys.push(name);
  }
  return keys.sort();
}

/** Reads one entry; undefined when the key is absent. The file's text is never put in an error: it holds secrets. */
export async function readStorageEntry(dir: string, key: string): Promise<StorageEntry | undefined> {
  checkKeyName(key);
  let text: string;
  try {
    text = await readFile(join(dir, key), 'utf8');
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT' || (err as { code?: unknown }).code === 'ENOTDIR') return undefined;
    throw new PullError('local-io', `storage key '${key}': cannot read its storage-config entry (${(err as { code?: string }).code ?? 'error'})`, key);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the input, which would leak credentials.
    throw new PullError('invalid-storage-config', `storage key '${key}': its storage-config entry is not valid JSON`, key);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new PullError('invalid-storage-config', `storage key '${key}': its storage-config entry is not a JSON object`, key);
  }
  return parsed as StorageEntry;
}

/**
 * Sets `value` at a dot path (`a.b.c`), creating objects on the way; only strings may be replaced, as upstream's
 * `ApplyParameterOverrides` does, so a parameter cannot turn an object or a number into a string by accident.
 */
export function applyOverrides(config: StorageEntry, overrides: Readonly<Record<string, string>>): void {
  for (const [dotpath, value] of Object.entries(overrides)) {
    const fields = dotpath.split('.');
    let target: Record<string, unknown> = config;
    for (let i = 0; i < fields.length - 1; i++) {
      const next = target[fields[i]];
      if (next === undefined) {
        const created: Record<string, unknown> = {};
        target[fields[i]] = created;
        target = created;
      } else if (next && typeof next === 'object' && !Array.isArray(next)) {
        target = next as Record<string, unknown>;
      } else {
        throw new PullError('invalid-request', `storage_params '${dotpath}': '${fields.slice(0, i + 1).join('.')}' is not an object in the storage entry`);
      }
    }
    const last = fields[fields.length - 1];
    if (last in target && typeof target[last] !== 'string') {
      throw new PullError('invalid-request', `storage_params '${dotpath}': only string fields can be overridden`);
    }
    target[last] = value;
  }
}

export interface ResolveRequest {
  readonly storageConfigDir: string;
  /** `storage_key` from the model key, when given. */
  readonly storageKey?: string;
  /** `storage_params` (already merged with the parameters parsed from a storage URI). */
  readonly params: Readonly<Record<string, string>>;
  /** Deprecated top-level `bucket` of the model key. */
  readonly legacyBucket?: string;
}

/**
 * Picks the entry as upstream's puller does: an explicit storage key must exist; otherwise `default_<type>` (when the
 * parameters name a type) or `default` is used if present. Then `default_bucket` fills `bucket` for s3, and the
 * parameters override fields. The directory is read on every call so rotated secrets apply to the next pull.
 */
export async function resolveStorage(req: ResolveRequest): Promise<ResolvedStorage> {
  let storageKey: string;
  let entry: StorageEntry | undefined;
  if (req.storageKey !== undefined) {
    storageKey = req.storageKey;
    entry = await readStorageEntry(req.storageConfigDir, storageKey);
    if (!entry) {
      const available = await listStorageKeys(req.storageConfigDir);
      throw new PullError('storage-key-not-found',
        `storage key '${storageKey}' not found in storage-config; available: ${available.length ? available.join(', ') : '(none)'}`,
        storageKey);
    }
  } else {
    storageKey = req.params.type ? `default_${req.params.type}` : 'default';
    entry = await readStorageEntry(req.storageConfigDir, storageKey);
  }
  const found = entry !== undefined;
  const config: StorageEntry = entry ?? {};

  if (config.type === 's3' && config.default_bucket !== undefined && config.bucket === undefined) {
    config.bucket = config.default_bucket;
  }
  // The deprecated top-level `bucket` of the model key ranks below storage_params.bucket.
  if (req.legacyBucket) config.bucket = req.legacyBucket;
  applyOverrides(config, req.params);

  if (typeof config.type !== 'string' || !config.type) {
    throw new PullError('invalid-request', found
      ? `storage key '${storageKey}': its entry has no "type"`
      : `no storage type: the model key names no storage_key, storage-config has no '${storageKey}' entry and storage_params give no "type"`,
    storageKey);
  }
  return { storageKey, found, type: config.type, config };
}
