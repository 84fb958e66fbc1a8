import { status } from '@grpc/grpc-js';
import { MeshError } from '../errors';

/** Why a pull failed; each maps to one gRPC code so the mesh reports LOADING_FAILED with a meaningful status. */
export type PullFailure =
  /** The model id, path or key JSON is malformed, or names an unsupported storage type. */
  | 'invalid-request'
  /** `storage_key` names an entry that is not in storage-config. */
  | 'storage-key-not-found'
  /** The storage-config entry (after overrides) lacks a field or has a bad value. */
  | 'invalid-storage-config'
  /** The storage refused the credentials (or their absence). */
  | 'unauthorized'
  /** The object, folder, bucket or container does not exist. */
  | 'not-found'
  /** The endpoint could not be reached (connection refused, DNS, timeout). */
  | 'unreachable'
  /** The endpoint's TLS certificate was not trusted. */
  | 'tls'
  /** The pull ran out of time or was cancelled. */
  | 'aborted'
  /** Any other answer from the storage. */
  | 'storage-error'
  /** Writing below rootModelDir failed. */
  | 'local-io';

const CODES: Record<PullFailure, status> = {
  'invalid-request': status.INVALID_ARGUMENT,
  'storage-key-not-found': status.NOT_FOUND,
  'invalid-storage-config': status.FAILED_PRECONDITION,
  'unauthorized': status.PERMISSION_DENIED,
  'not-found': status.NOT_FOUND,
  'unreachable': status.UNAVAILABLE,
  'tls': status.FAILED_PRECONDITION,
  'aborted': status.DEADLINE_EXCEEDED,
  'storage-error': status.INTERNAL,
  'local-io': status.INTERNAL,
};

/**
 * A failed pull. The message names the storage key and the object and never carries a secret: every text that
 * comes from an SDK passes through `redact` with the entry's secret values first.
 */
export class PullError extends MeshError {
  constructor(
    public readonly reason: PullFailure,
    message: string,
    /** The storage key used (or tried), when one was resolved. */
    public readonly storageKey?: string,
    /** The remote object, folder or URL, when the failure concerns one. */
    public readonly object?: string,
  ) {
    // Only an unreachable endpoint is worth retrying elsewhere; every other failure would repeat.
    super(CODES[reason], message, reason === 'unreachable');
    this.name = 'PullError';
  }
}

/** Config fields whose values are secrets, whatever the storage type. */
const SECRET_FIELD = /key|secret|password|token|connection_string|credential|signature|sas/i;

/**
 * Collects the secret strings of a storage entry so they can be scrubbed from error texts: values of secret-named
 * fields (and their lines, for PEM keys), header values, the parts of a connection string and a URL's userinfo and query.
 */
export function secretsOf(config: Readonly<Record<string, unknown>>): string[] {
  const out = new Set<string>();
  const add = (value: string) => {
    if (value.length < 4) return;
    out.add(value);
    for (const line of value.split(/\r?\n/)) if (line.trim().length >= 8 && !line.startsWith('-----')) out.add(line.trim());
    // Connection strings: `AccountKey=...;SharedAccessSignature=...`; each value on its own may be echoed.
    for (const part of value.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && SECRET_FIELD.test(part.slice(0, eq)) && part.length - eq > 4) out.add(part.slice(eq + 1));
    }
  };
  const visit = (value: unknown, name: string, inHeaders: boolean) => {
    if (typeof value === 'string') {
      if (inHeaders || SECRET_FIELD.test(name)) add(value);
      if (name === 'url') {
        try {
          const u = new URL(value);
          if (u.password) add(decodeURIComponent(u.password));
          if (u.username) add(decodeURIComponent(u.username));
          if (u.search.length > 1) add(u.search.slice(1));
          for (const v of u.searchParams.values()) add(v);
        } catch { /* not a URL: nothing to add */ }
      }
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item, name, inHeaders);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) visit(v, k, inHeaders || name === 'headers');
    }
  };
  visit(config, '', false);
  // Longest first, so a secret that contains another is replaced whole.
  return [...out].sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of each secret with `<redacted>`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('<redacted>');
  return out;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH',
  'ENETUNREACH', 'EPIPE', 'ECONNABORTED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'TimeoutError', 'RequestTimeout']);
// Errors of the local filesystem while writing the copy.
const LOCAL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EEXIST', 'EISDIR', 'ENOTDIR', 'EMFILE', 'ENAMETOOLONG']);
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL|EPROTO/;
const NOT_FOUND_NAMES = new Set(['ENOENT', 'NoSuchKey', 'NoSuchBucket', 'NotFound', 'BlobNotFound', 'ContainerNotFound', 'ResourceNotFound']);
const DENIED_NAMES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'AuthenticationFailed',
  'AuthorizationFailure', 'AuthorizationPermissionMismatch', 'InvalidToken', 'ExpiredToken', 'CredentialsProviderError',
  'NoAuthenticationInformation', 'PublicAccessNotPermitted']);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  status?: unknown;
  cause?: unknown;
  errors?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  response?: { status?: unknown };
}

/** Reads the HTTP status, error code and name of an SDK error, looking into `cause` and aggregated errors. */
function facts(err: unknown, depth = 0): { httpStatus?: number; codes: string[] } {
  const e = (err ?? {}) as ErrorLike;
  const codes: string[] = [];
  let httpStatus: number | undefined;
  for (const v of [e.$metadata?.httpStatusCode, e.statusCode, e.status, e.response?.status, e.code]) {
    if (typeof v === 'number' && v >= 100 && v < 600 && httpStatus === undefined) httpStatus = v;
  }
  for (const v of [e.code, e.name]) if (typeof v === 'string') codes.push(v);
  // Some wrappers keep only the text of the original error (the AWS SDK does for errors from another realm).
  const message = (err as { message?: unknown })?.message;
  if (typeof message === 'string') {
    for (const m of message.matchAll(/\b(E[A-Z]{3,}[A-Z_]*|ERR_[A-Z_]+|[A-Z_]*CERT[A-Z_]*)\b/g)) codes.push(m[1]);
    if (/self[- ]signed certificate|unable to verify the first certificate/i.test(message)) codes.push('SELF_SIGNED_CERT');
  }
  if (depth < 3) {
    const nested = [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])];
    for (const n of nested) {
      if (!n) continue;
      const inner = facts(n, depth + 1);
      httpStatus ??= inner.httpStatus;
      codes.push(...inner.codes);
    }
  }
  return { httpStatus, codes };
}

/** Sorts an SDK or network error into a PullFailure. */
export function classify(err: unknown): PullFailure {
  if (err instanceof PullError) return err.reason;
  const { httpStatus, codes } = facts(err);
  if (codes.some((c) => c === 'AbortError' || c === 'ABORT_ERR')) return 'aborted';
  if (codes.some((c) => TLS_CODES.test(c))) return 'tls';
  if (httpStatus === undefined && codes.some((c) => LOCAL_CODES.has(c))) return 'local-io';
  if (codes.some((c) => NOT_FOUND_NAMES.has(c)) || httpStatus === 404) return 'not-found';
  if (codes.some((c) => DENIED_NAMES.has(c)) || httpStatus === 401 || httpStatus === 403) return 'unauthorized';
  if (codes.some((c) => NETWORK_CODES.has(c))) return 'unreachable';
  if (httpStatus === 429 || httpStatus === 502 || httpStatus === 503 || httpStatus === 504) return 'unreachable';
  return 'storage-error';
}

/** One line of an error's own text, redacted and bounded, for the end of a PullError message. */
export function detailOf(err: unknown, secrets: readonly string[]): string {
  const e = err as { message?: unknown; code?: unknown; name?: unknown };
  let text = typeof e?.message === 'string' && e.message.trim() ? e.message : '';
  // Some SDK errors have an empty or generic message; the code or name says more.
  const code = typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' && e.name !== 'Error' ? e.name : '';
  if (code && !text.includes(code)) text = text ? `${code}: ${text}` : code;
  if (!text) text = String(err);
  text = text.replace(/^AWS SDK error wrapper for (Error: )?/, '');
  const line = redact(text, secrets).replace(/\s+/g, ' ').trim();
  return line.length > 400 ? `${line.slice(0, 400)}…` : line;
}

const WHAT: Record<PullFailure, string> = {
  'invalid-request': 'invalid request',
  'storage-key-not-found': 'storage key not found',
  'invalid-storage-config': 'invalid storage configuration',
  'unauthorized': 'access denied (check the credentials in the storage key)',
  'not-found': 'not found',
  'unreachable': 'storage endpoint unreachable',
  'tls': 'TLS certificate not trusted (give the CA in the storage key\'s "certificate")',
  'aborted': 'pull timed out or was cancelled',
  'storage-error': 'storage error',
  'local-io': 'writing the local copy failed',
};

/** Wraps any error raised while reaching `object` through storage key `storageKey`. */
export function storageFailure(err: unknown, storageKey: string, object: string, secrets: readonly string[]): PullError {
  if (err instanceof PullError) return err;
  const reason = classify(err);
  return new PullError(reason, `storage key '${storageKey}': ${object}: ${WHAT[reason]}: ${detailOf(err, secrets)}`,
    storageKey, object);
}
