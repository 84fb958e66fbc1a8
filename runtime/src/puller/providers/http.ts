import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import * as http from 'node:http';
import * as https from 'node:https';
import { posix } from 'node:path';
import { PullError, storageFailure } from '../errors';
import { type ProviderContext, type StorageProvider, stringField } from './types';

/** An HTTP answer that is not a success; `statusCode` lets `classify` tell 404 from 401/403. */
class HttpStatusError extends Error {
  constructor(readonly statusCode: number, statusMessage: string) {
    super(`HTTP ${statusCode}${statusMessage ? ` ${statusMessage}` : ''}`);
  }
}

interface TlsOptions {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

const MAX_REDIRECTS = 5;
/** Upstream's client gives a download 15 minutes; here a stalled socket fails sooner, a slow large file does not. */
const IDLE_TIMEOUT_MS = 60_000;

/** `headers` as upstream accepts them: each value a string or an array of strings. */
function parseHeaders(ctx: ProviderContext): OutgoingHttpHeaders {
  const raw = ctx.config.headers;
  if (raw === undefined || raw === null) return {};
  const bad = () => new PullError('invalid-storage-config',
    `storage key '${ctx.storageKey}': "headers" must be an object whose values are strings or arrays of strings`, ctx.storageKey);
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad();
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) out[name] = value as string[];
    else throw bad();
  }
  return out;
}

/** Credentials in headers go only to the origin they were configured for, as browsers and Go's client do. */
function headersFor(target: URL, origin: string, headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (target.origin === origin) return headers;
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!/^(authorization|cookie|proxy-authorization)$/i.test(k)) out[k] = v;
  return out;
}

/** GETs `url`, following redirects; resolves with a 2xx response whose body is still unread. */
function get(url: URL, origin: string, headers: OutgoingHttpHeaders, tls: TlsOptions, signal: AbortSignal,
  redirects = MAX_REDIRECTS): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    // One connection per file, closed afterwards: no idle keep-alive sockets linger in the mesh between pulls.
    const options = { headers: headersFor(url, origin, headers), signal, agent: false, ...(url.protocol === 'https:' ? tls : {}) };
    const req = (url.protocol === 'https:' ? https : http).get(url, options, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && redirects > 0) {
        res.resume();
        resolve(get(new URL(res.headers.location, url), origin, headers, tls, signal, redirects - 1));
      } else if (status >= 200 && status < 300) {
        resolve(res);
      } else {
        res.resume();
        reject(new HttpStatusError(status, res.statusMessage ?? ''));
      }
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'ETIMEDOUT' })));
    req.once('error', reject);
  });
}

/**
 * `type: http` — a file GET from `<url>` with the model path joined to the URL's path, as upstream does: `url`
 * (required), `headers`, `certificate` (CA PEM) and `client_certificate` + `client_key` (both or neither).
 */
export const httpProvider: StorageProvider = async (ctx, targets) => {
  const rawUrl = stringField(ctx, 'url', true) as string;
  let base: URL;
  try {
    base = new URL(rawUrl);
  } catch {
    throw new PullError('invalid-storage-config', `storage key '${ctx.storageKey}': "url" is not a valid URL`, ctx.storageKey);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new PullError('invalid-storage-config', `storage key '${ctx.storageKey}': "url" must be http or https`, ctx.storageKey);
  }
  const headers = parseHeaders(ctx);
  const ca = stringField(ctx, 'certificate');
  const cert = stringField(ctx, 'client_certificate');
  const key = stringField(ctx, 'client_key');
  if (Boolean(cert) !== Boolean(key)) {
    throw new PullError('invalid-storage-config',
      `storage key '${ctx.storageKey}': "client_certificate" and "client_key" must be given together`, ctx.storageKey);
  }
  const tls: TlsOptions = { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) };

  for (const target of targets) {
    const url = new URL(base.toString());
    url.pathname = posix.join(base.pathname || '/', target.remotePath);
    // Messages name the URL without userinfo or query: either may hold a token.
    const object = `${url.origin}${url.pathname}`;
    try {
      const res = await get(url, base.origin, headers, tls, ctx.signal);
      await ctx.staging.write(target.localName, res, ctx.signal);
    } catch (err) {
      throw storageFailure(err, ctx.storageKey, object, ctx.secrets);
    }
  }
};
