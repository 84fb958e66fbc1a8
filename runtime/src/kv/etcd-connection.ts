import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { inspect } from 'node:util';
import { invalidArgument, MeshError } from '../errors';

/**
 * Where the store lives, from `KV_STORE` and upstream's `etcd_connection` JSON (the `model-serving-etcd` secret):
 * `endpoints`, `root_prefix`, `userid`/`password`, `certificate[_file]` (CA), `client_key[_file]`,
 * `client_certificate[_file]`, `override_authority`. `*_file` names are absolute or relative to the JSON file's
 * folder, as upstream's etcd-java reads them.
 */

const KV_STORE_FORMS = '"embedded", "etcd:<path to etcd_connection JSON>" or "etcd:<host:port>[,<host:port>…]"';
const DEFAULT_ETCD_PORT = 2379;

/** The forms of `KV_STORE`. */
export type KvStoreSetting =
  | { readonly kind: 'embedded' }
  | { readonly kind: 'etcd-file'; readonly path: string }
  | { readonly kind: 'etcd-endpoints'; readonly endpoints: string };

/** A value that must never reach a log: printing, `String()` and `JSON.stringify` show `[redacted]`. */
export class Secret {
  readonly #value: Buffer;

  constructor(value: string | Buffer) {
    this.#value = Buffer.from(value);
  }

  reveal(): Buffer {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}

export interface EtcdTls {
  /** CA bundle that signs the server certificate; the system roots when absent. */
  readonly ca?: Buffer;
  readonly clientCertificate?: Buffer;
  readonly clientKey?: Secret;
  /** Name to verify the server certificate against instead of the endpoint's host. */
  readonly overrideAuthority?: string;
}

/** A parsed, validated etcd connection. */
export interface EtcdConnection {
  /** Endpoints with scheme and port, e.g. `https://etcd:2379`; all share one scheme. */
  readonly endpoints: readonly string[];
  readonly rootPrefix: string;
  readonly auth?: { readonly username: string; readonly password: Secret };
  /** Present exactly when the endpoints are `https://`. */
  readonly tls?: EtcdTls;
}

/**
 * Parses `KV_STORE`. Pure: says which form the value has without touching files. After `etcd:`, a value made only of
 * `host:port` items (or URLs with a scheme) is a list of endpoints; anything else is a path to the JSON file.
 */
export function parseKvStoreSetting(value: string): KvStoreSetting {
  const trimmed = value.trim();
  if (trimmed === 'embedded') return { kind: 'embedded' };
  if (!trimmed.startsWith('etcd:')) throw invalidArgument(`KV_STORE must be ${KV_STORE_FORMS}, got "${redactUserinfo(trimmed)}"`);
  const rest = trimmed.slice('etcd:'.length).trim();
  if (!rest) throw invalidArgument(`KV_STORE "etcd:" needs a path to an etcd_connection JSON file or host:port endpoints; expected ${KV_STORE_FORMS}`);
  if (looksLikeEndpoints(rest)) return { kind: 'etcd-endpoints', endpoints: rest.replace(/^\/\//, '') };
  return { kind: 'etcd-file', path: rest };
}

function looksLikeEndpoints(value: string): boolean {
  if (/^https?:\/\//i.test(value) || value.startsWith('//')) return true;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  return items.length > 0 && items.every((item) => /^(\[[0-9a-fA-F:.]+\]|[^\s/:[\]]+):\d+$/.test(item));
}

/** Reads `*_file` fields; injectable so parsing stays testable without a file system. */
export type FileReader = (path: string) => Buffer;

export interface ParseEtcdConnectionOptions {
  /** Where the JSON came from, for error messages (a file path or `KV_STORE`). */
  readonly source: string;
  /** Folder that relative `*_file` names are resolved against. @default the current directory */
  readonly baseDir?: string;
  /** @default fs.readFileSync */
  readonly readFile?: FileReader;
}

/**
 * Parses the `etcd_connection` JSON. Errors name the source and the field and never echo a password or key.
 */
export function parseEtcdConnection(json: string, options: ParseEtcdConnectionOptions): EtcdConnection {
  const fail = (message: string) => invalidArgument(`etcd_connection (${options.source}): ${message}`);
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    // JSON.parse's message may quote the input (and so a password): report only where it broke.
    const at = /position (\d+)/.exec(err instanceof Error ? err.message : '');
    throw fail(`not valid JSON${at ? ` (at character ${at[1]})` : ''}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('must be a JSON object');
  const fields = doc as Record<string, unknown>;

  const text = (name: string, secret = false): string | undefined => {
    const v = fields[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw fail(`${name} must be a string${secret ? '' : `, got ${JSON.stringify(v)}`}`);
    return v;
  };
  const readFile = options.readFile ?? ((path: string) => readFileSync(path));
  const material = (inline: string, file: string, secret = false): Buffer | undefined => {
    const value = text(inline, secret);
    const path = text(file);
    if (value !== undefined && path !== undefined) throw fail(`give ${inline} or ${file}, not both`);
    if (value !== undefined) return Buffer.from(value, 'utf8');
    if (path === undefined || path.trim() === '') return undefined;
    const full = isAbsolute(path) ? path : resolve(options.baseDir ?? '.', path);
    try {
      return readFile(full);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
      throw fail(`cannot read ${file} ${full}: ${reason}`);
    }
  };

  const endpointsField = fields.endpoints;
  let rawEndpoints: string;
  if (typeof endpointsField === 'string') {
    rawEndpoints = endpointsField;
  } else if (Array.isArray(endpointsField) && endpointsField.every((e) => typeof e === 'string')) {
    rawEndpoints = endpointsField.join(',');
  } else if (endpointsField === undefined || endpointsField === null) {
    throw fail('endpoints is required (comma-separated host:port or URLs, e.g. "https://etcd:2379")');
  } else {
    throw fail('endpoints must be a string of comma-separated endpoints');
  }

  const ca = material('certificate', 'certificate_file');
  const clientCertificate = material('client_certificate', 'client_certificate_file');
  const clientKey = material('client_key', 'client_key_file', true);
  if ((clientKey === undefined) !== (clientCertificate === undefined)) {
    throw fail('client_key[_file] and client_certificate[_file] must be given together');
  }
  const overrideAuthority = text('override_authority');
  const wantsTls = ca !== undefined || clientKey !== undefined;
  const endpoints = parseEndpoints(rawEndpoints, wantsTls, (m) => fail(`endpoints: ${m}`));
  const secure = endpoints[0].startsWith('https://');

  const username = text('userid');
  const password = text('password', true);
  if ((username === undefined) !== (password === undefined)) throw fail('userid and password must be given together');

  return {
    endpoints,
    rootPrefix: text('root_prefix') ?? '',
    auth: username !== undefined && password !== undefined ? { username, password: new Secret(password) } : undefined,
    tls: secure ? {
      ca,
      clientCertificate,
      clientKey: clientKey ? new Secret(clientKey) : undefined,
      overrideAuthority: overrideAuthority?.trim() || undefined,
    } : undefined,
  };
}

/** A connection from `KV_STORE=etcd:<host:port>[,…]`: plain endpoints, no root prefix, no auth. */
export function etcdConnectionFromEndpoints(endpoints: string): EtcdConnection {
  const parsed = parseEndpoints(endpoints, false, (m) => invalidArgument(`KV_STORE: ${m}`));
  // https:// here means TLS verified against the system's roots: there is no place for a CA in this form.
  return { endpoints: parsed, rootPrefix: '', tls: parsed[0].startsWith('https://') ? {} : undefined };
}

/** Resolves a `KV_STORE` etcd setting to a connection, reading the JSON file (and the files it names). */
export function loadEtcdConnection(setting: Exclude<KvStoreSetting, { kind: 'embedded' }>, readFile?: FileReader): EtcdConnection {
  if (setting.kind === 'etcd-endpoints') return etcdConnectionFromEndpoints(setting.endpoints);
  const read = readFile ?? ((path: string) => readFileSync(path));
  let json: string;
  try {
    json = read(setting.path).toString('utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw invalidArgument(`KV_STORE: cannot read etcd_connection file ${setting.path}: ${reason}`);
  }
  return parseEtcdConnection(json, { source: setting.path, baseDir: dirname(resolve(setting.path)), readFile: read });
}

/** `http://a:2379,https://b` → normalised URLs with scheme and port. */
function parseEndpoints(raw: string, wantsTls: boolean, fail: (message: string) => MeshError): string[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw fail('no endpoint given (expected comma-separated host:port or URLs)');
  const endpoints = items.map((item) => {
    const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(item);
    const scheme = schemeMatch ? schemeMatch[1].toLowerCase() : wantsTls ? 'https' : 'http';
    if (scheme !== 'http' && scheme !== 'https') throw fail(`"${redactUserinfo(item)}" has scheme ${scheme}; use http:// or https://`);
    if (scheme === 'http' && wantsTls) {
      throw fail(`"${item}" is plain http but TLS settings (certificate or client key) are given; use https:// or no scheme`);
    }
    const rest = schemeMatch ? item.slice(schemeMatch[0].length) : item;
    const authority = rest.replace(/\/$/, '');
    if (authority.includes('@')) throw fail(`"${redactUserinfo(item)}" carries credentials; use userid and password instead`);
    if (authority.includes('/') || authority.includes('?') || authority.includes('#')) throw fail(`"${item}" must be host:port without a path`);
    const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+)(?::(\d+))?$/.exec(authority);
    if (!m) throw fail(`"${item}" is not host:port`);
    const port = m[2] === undefined ? DEFAULT_ETCD_PORT : Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw fail(`"${item}" has port ${m[2]}; expected 1-65535`);
    return `${scheme}://${m[1]}:${port}`;
  });
  const secure = endpoints.filter((e) => e.startsWith('https://')).length;
  if (secure !== 0 && secure !== endpoints.length) throw fail('mixes http:// and https:// endpoints; use one scheme for all');
  return endpoints;
}

/** `http://user:pw@host` → `http://***@host`, for messages that echo what was given. */
function redactUserinfo(value: string): string {
  return value.replace(/(^|\/\/|,)[^,/@\s]*@/g, '$1***@');
}

/** One line for logs: endpoints, prefix, user and TLS use; never a password or key. */
export function describeEtcdConnection(connection: EtcdConnection): string {
  const parts = [`etcd ${connection.endpoints.join(',')}`];
  if (connection.auth) parts.push(`user ${connection.auth.username}`);
  if (connection.tls) parts.push(connection.tls.clientKey ? 'mTLS' : 'TLS');
  return parts.join(' ');
}
