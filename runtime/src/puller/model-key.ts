import { PullError } from './errors';

/** The model key JSON the mesh passes through to the runtime (`ModelInfo.key`), as the puller reads it. */
export interface ModelKey {
  readonly storageKey?: string;
  readonly storageParams: Readonly<Record<string, string>>;
  readonly schemaPath?: string;
  /** Deprecated top-level bucket. */
  readonly bucket?: string;
  /** Every field as given; fields the puller does not know (model_type, …) are passed on unchanged. */
  readonly fields: Readonly<Record<string, unknown>>;
}

function optionalString(fields: Record<string, unknown>, name: string): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new PullError('invalid-request', `model key field "${name}" must be a string`);
  return value;
}

/** Parses the model key; an empty key is `{}`. */
export function parseModelKey(text: string): ModelKey {
  let parsed: unknown = {};
  if (text.trim()) {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new PullError('invalid-request', 'the model key is not valid JSON');
    }
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new PullError('invalid-request', 'the model key must be a JSON object');
  }
  const fields = parsed as Record<string, unknown>;
  const rawParams = fields.storage_params ?? {};
  if (!rawParams || typeof rawParams !== 'object' || Array.isArray(rawParams)) {
    throw new PullError('invalid-request', 'model key field "storage_params" must be an object of strings');
  }
  const storageParams: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawParams)) {
    if (typeof v !== 'string') throw new PullError('invalid-request', `storage_params "${k}" must be a string`);
    storageParams[k] = v;
  }
  return {
    storageKey: optionalString(fields, 'storage_key'),
    storageParams,
    schemaPath: optionalString(fields, 'schema_path'),
    bucket: optionalString(fields, 'bucket') || undefined,
    fields,
  };
}

/** A storage location: the path inside the storage and the parameters that select and override the entry. */
export interface StorageLocation {
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
}

const AZURE_BLOB_HOST_SUFFIX = 'blob.core.windows.net';

/** Whether a model path is a storage URI (`scheme://…`) rather than a path inside a storage entry. */
export function isStorageUri(path: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(path);
}

/**
 * Parses a storage URI the way modelmesh-serving parses an InferenceService's `storageUri`: `s3://bucket/path`,
 * `gs://bucket/path`, `pvc://claim/path`, `https://<account>.blob.core.windows.net/<container>/path` and any other
 * `http(s)://host/path` (the URL without its path becomes the entry's `url`, the path the model path).
 */
export function parseStorageUri(uri: string): StorageLocation {
  let url: URL;
  let rest: string;
  try {
    url = new URL(uri);
    rest = decodeURIComponent(url.pathname).replace(/^\/+/, '');
  } catch {
    throw new PullError('invalid-request', `model path '${uri}' is not a valid storage URI`);
  }
  const withHost = (params: Record<string, string>, hostField: string): Record<string, string> =>
    (url.host ? { ...params, [hostField]: url.host } : params);
  switch (url.protocol) {
    case 'pvc:': return { path: rest, params: withHost({ type: 'pvc' }, 'name') };
    case 's3:': return { path: rest, params: withHost({ type: 's3' }, 'bucket') };
    case 'gs:': return { path: rest, params: withHost({ type: 'gcs' }, 'bucket') };
    case 'http:':
    case 'https:': {
      if (url.hostname.endsWith(AZURE_BLOB_HOST_SUFFIX)) {
        const [container, ...path] = rest.split('/');
        return { path: path.join('/'), params: { type: 'azure', account_name: url.hostname.split('.')[0], container } };
      }
      // Upstream keeps scheme, host and query in `url` and moves the path to the model path.
      return { path: rest, params: { type: 'http', url: `${url.protocol}//${url.host}${url.search}` } };
    }
    default:
      throw new PullError('invalid-request',
        `model path '${uri}' has the unsupported scheme '${url.protocol.replace(/:$/, '')}' (use s3, gs, pvc, http or https)`);
  }
}

/**
 * The key the runtime receives after a pull, as upstream's puller rewrites it: the storage fields are removed (the
 * runtime reads a local path now), `disk_size_bytes` is added and `schema_path` points at the local schema file.
 */
export function rewriteModelKey(key: ModelKey, diskSizeBytes: number, localSchemaPath?: string): string {
  const out: Record<string, unknown> = { ...key.fields };
  delete out.storage_key;
  delete out.storage_params;
  delete out.bucket;
  out.disk_size_bytes = diskSizeBytes;
  if (localSchemaPath !== undefined) out.schema_path = localSchemaPath;
  return JSON.stringify(out);
}
