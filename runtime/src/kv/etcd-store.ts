import { createSecureContext, rootCertificates, SecureContextOptions } from 'node:tls';
import { CallOptions, ChannelOptions, status } from '@grpc/grpc-js';
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCFailedPreconditionError,
  GRPCInvalidArgumentError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  ICompare,
  IKeyValue,
  IOptions,
  IRequestOp,
  isRecoverableError,
} from 'etcd3';
import { failedPrecondition, internal, invalidArgument, MeshError, unavailable } from '../errors';
import { checkTtl, duplicateTxnKey, KvLeaseNotFoundError, KvStoreClosedError } from './errors';
import { describeEtcdConnection, EtcdConnection, EtcdTls } from './etcd-connection';
import { EtcdLeaseHandle, EtcdLeaseHost } from './etcd-lease';
import { EtcdWatch, toEntry } from './etcd-watch';
import { prefixRangeEnd, storeNamespace } from './namespace';
import {
  CasResult, KvEntry, KvSnapshot, KvStore, Lease, PutOptions, TxnOp, TxnResult, Watch, WatchHandlers,
} from './store';

export interface EtcdStoreOptions {
  readonly connection: EtcdConnection;
  /** `MM_SERVICE_NAME`: the last part of the namespace. */
  readonly serviceName: string;
  /** `MM_KVSTORE_PREFIX`: the middle part of the namespace. */
  readonly kvPrefix: string;
  /**
   * Bound on every call (each page of a `getPrefix`, a watch's start, a lease grant). An unreachable etcd fails the
   * call with UNAVAILABLE after this long instead of hanging. @default 5000
   */
  readonly requestTimeoutMs?: number;
  /** Keys per range request in `getPrefix`. @default 10000 */
  readonly pageSize?: number;
}

/** Far above one 10k-key page, so a page of large records is never refused (grpc-js's default is 4 MiB). */
const MAX_RECEIVE_BYTES = 256 * 1024 * 1024;
/** Extra time the local guard gives the gRPC deadline to fire first, so the error names the real cause. */
const GUARD_MARGIN_MS = 500;
const COMPACTED = 'required revision has been compacted';

/**
 * KvStore over etcd v3 (`etcd3`). Keys live under `<root_prefix>/<kvPrefix>/<service>/`. Reads of a prefix are
 * paginated at one revision; conditional writes are single etcd transactions comparing mod revisions; each watch
 * has its own stream and resumes after its last delivered event when the stream breaks; leases are kept alive by
 * etcd3 and reported lost when a keep-alive finds them gone or none has been answered for a whole TTL. Every call is
 * bounded by `requestTimeoutMs` and fails with UNAVAILABLE naming the endpoints when etcd does not answer.
 *
 * A call that times out or fails on the transport may still have been applied by etcd (the reply was lost): callers
 * that must know re-read the key.
 */
export class EtcdStore implements KvStore, EtcdLeaseHost {
  readonly description: string;
  /** The namespace every key is relative to, e.g. `/root/mm/svc/`. */
  readonly namespace: string;
  private readonly client: Etcd3;
  private readonly ns: Buffer;
  private readonly timeoutMs: number;
  private readonly pageSize: number;
  private readonly endpoints: string;
  /** For messages that name who was refused; never the password or key. */
  private readonly username: string | undefined;
  private readonly hasClientCertificate: boolean;
  private readonly watches = new Set<EtcdWatch>();
  private readonly leases = new Set<EtcdLeaseHandle>();
  private closed = false;

  constructor(options: EtcdStoreOptions) {
    const { connection } = options;
    this.namespace = storeNamespace(connection.rootPrefix, options.kvPrefix, options.serviceName);
    this.ns = Buffer.from(this.namespace, 'utf8');
    this.timeoutMs = options.requestTimeoutMs ?? 5_000;
    this.pageSize = options.pageSize ?? 10_000;
    this.endpoints = connection.endpoints.join(',');
    this.username = connection.auth?.username;
    this.hasClientCertificate = connection.tls?.clientKey !== undefined;
    this.description = `${describeEtcdConnection(connection)} prefix ${this.namespace}`;

    const grpcOptions: ChannelOptions = {
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
      // Pings find a dead peer (no FIN) so watches and keep-alives reconnect; etcd tolerates one per 5 s or slower.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // grpc-js backs reconnects off up to 120 s; a mesh must notice a recovered etcd within seconds.
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5_000,
    };
    const tls = connection.tls;
    if (tls?.overrideAuthority) {
      grpcOptions['grpc.ssl_target_name_override'] = tls.overrideAuthority;
      grpcOptions['grpc.default_authority'] = tls.overrideAuthority;
    }
    const etcdOptions: IOptions = {
      hosts: [...connection.endpoints],
      grpcOptions,
      // Unary calls get a deadline even when etcd3 makes them on its own (auth token exchange, lease grant).
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.timeoutMs }),
    };
    if (tls && (tls.ca || tls.clientKey)) {
      checkTlsMaterial(tls);
      etcdOptions.credentials = {
        // Node's bundled roots stand in when only a client certificate is given (etcd3 insists on a root buffer).
        rootCertificate: tls.ca ?? Buffer.from(rootCertificates.join('\n')),
        privateKey: tls.clientKey?.reveal(),
        certChain: tls.clientCertificate,
      };
    }
    if (connection.auth) {
      etcdOptions.auth = { username: connection.auth.username, password: connection.auth.password.reveal().toString('utf8') };
    }
    this.client = new Etcd3(etcdOptions);
    if (etcdOptions.auth && tls?.overrideAuthority) authenticateWithChannelOptions(this.client, etcdOptions);
  }

  /** Checks that etcd answers (and accepts the credentials); resolves with its current revision. */
  async checkConnection(): Promise<number> {
    const res = await this.call('connect', () => this.client.kv.range({ key: this.ns, range_end: prefixRangeEnd(this.ns), count_only: true }, this.deadline()));
    return Number(res.header.revision);
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const res = await this.call(`get ${key}`, () => this.client.kv.range({ key: this.fullKey(key) }, this.deadline()));
    return res.kvs.length > 0 ? this.toEntry(res.kvs[0]) : undefined;
  }

  async getPrefix(prefix: string): Promise<KvSnapshot> {
    // A page's revision can be compacted away mid-read; start over at a newer one (rare: only under heavy writes).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readPages(prefix);
      } catch (err) {
        if (attempt >= 3 || !(err instanceof MeshError) || !err.message.includes(COMPACTED)) throw err;
      }
    }
  }

  async put(key: string, value: string, options?: PutOptions): Promise<number> {
    const lease = options?.lease?.id;
    const res = await this.call(`put ${key}`, () => this.client.kv.put({ key: this.fullKey(key), value: Buffer.from(value, 'utf8'), lease }, this.deadline()), lease);
    return Number(res.header.revision);
  }

  async putIfModRevision(key: string, value: string, expectedModRevision: number, options?: PutOptions): Promise<CasResult> {
    checkRevision(expectedModRevision);
    const full = this.fullKey(key);
    const lease = options?.lease?.id;
    const res = await this.call(`put ${key} if mod revision ${expectedModRevision}`, () => this.client.kv.txn({
      compare: [guard(full, expectedModRevision)],
      success: [{ request_put: { key: full, value: Buffer.from(value, 'utf8'), lease } }],
      failure: [{ request_range: { key: full } }],
    }, this.deadline()), lease);
    if (res.succeeded) return { succeeded: true, entry: { key, value, modRevision: Number(res.header.revision), lease } };
    return { succeeded: false, entry: this.rangeResult(res.responses[0]?.response_range?.kvs) };
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.call(`delete ${key}`, () => this.client.kv.deleteRange({ key: this.fullKey(key) }, this.deadline()));
    return Number(res.deleted) > 0;
  }

  async deleteIfModRevision(key: string, expectedModRevision: number): Promise<CasResult> {
    checkRevision(expectedModRevision);
    const full = this.fullKey(key);
    const res = await this.call(`delete ${key} if mod revision ${expectedModRevision}`, () => this.client.kv.txn({
      compare: [guard(full, expectedModRevision)],
      // 0 means "only if absent": there is nothing to delete then, the guard alone is the answer.
      success: expectedModRevision === 0 ? [] : [{ request_delete_range: { key: full } }],
      failure: [{ request_range: { key: full } }],
    }, this.deadline()));
    if (res.succeeded) return { succeeded: true };
    return { succeeded: false, entry: this.rangeResult(res.responses[0]?.response_range?.kvs) };
  }

  async transact(ops: readonly TxnOp[]): Promise<TxnResult> {
    const seen = new Set<string>();
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    for (const op of ops) {
      checkRevision(op.expectedModRevision);
      if (seen.has(op.key)) throw duplicateTxnKey(op.key);
      seen.add(op.key);
      const full = this.fullKey(op.key);
      compare.push(guard(full, op.expectedModRevision));
      success.push(op.value === undefined
        ? { request_delete_range: { key: full } }
        : { request_put: { key: full, value: Buffer.from(op.value, 'utf8'), lease: op.lease?.id } });
    }
    const leaseId = ops.find((op) => op.lease)?.lease?.id;
    const res = await this.call(`transaction on ${ops.length} keys`, () => this.client.kv.txn({ compare, success }, this.deadline()), leaseId);
    return res.succeeded ? { succeeded: true, revision: Number(res.header.revision) } : { succeeded: false };
  }

  async watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    const what = `watch ${prefix || '(all keys)'}`;
    this.assertOpen(what);
    const key = Buffer.concat([this.ns, Buffer.from(prefix, 'utf8')]);
    const openStream = () => this.client.watchClient.watch();
    const watch = new EtcdWatch(openStream, key, this.ns.length, fromRevision, prefix, handlers, (w) => this.watches.delete(w));
    this.watches.add(watch);
    try {
      await withTimeout(watch.started, this.timeoutMs,
        () => unavailable(`etcd at ${this.endpoints} is unreachable (${what}): the watch was not established within ${this.timeoutMs} ms${watch.lastFailure}`));
    } catch (err) {
      await watch.cancel();
      throw this.translate(err, what);
    }
    return watch;
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    const what = `grant lease (TTL ${ttlSeconds}s)`;
    this.assertOpen(what);
    checkTtl(ttlSeconds);
    const inner = this.client.lease(ttlSeconds, { deadline: Date.now() + this.timeoutMs });
    // Listen before the grant completes: etcd3 reports a failed grant as a 'lost' event too.
    const handle = new EtcdLeaseHandle(inner, ttlSeconds, this);
    try {
      handle.granted(await this.call(what, () => inner.grant()));
      // Closed meanwhile: a lease nobody will release would keep etcd3's keep-alive loop (and Node) running.
      this.assertOpen(what);
    } catch (err) {
      handle.release();
      throw err;
    }
    this.leases.add(handle);
    return handle;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Watchers and keep-alive streams hold Node open until cancelled; cancel them before closing the channels.
    await Promise.all([...this.watches].map((w) => w.cancel()));
    for (const lease of this.leases) lease.release();
    this.leases.clear();
    this.client.close();
  }

  /** @internal Runs one etcd call with the closed check, a local time bound and error translation. */
  async call<T>(what: string, op: () => Promise<T>, leaseId?: string): Promise<T> {
    this.assertOpen(what);
    let timer: NodeJS.Timeout | undefined;
    const guardPromise = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable(`etcd at ${this.endpoints} is unreachable (${what}): no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs + GUARD_MARGIN_MS);
    });
    try {
      return await Promise.race([op(), guardPromise]);
    } catch (err) {
      throw this.translate(err, what, leaseId);
    } finally {
      clearTimeout(timer);
    }
  }

  /** @internal Maps etcd3's errors onto the mesh's vocabulary. */
  translate(err: unknown, what: string, leaseId?: string): MeshError {
    if (err instanceof MeshError) return err;
    const message = err instanceof Error ? err.message.replace(/^\w*Error: /, '') : String(err);
    if (err instanceof EtcdLeaseInvalidError) return new KvLeaseNotFoundError(leaseId ?? 'unknown', `etcd ${what}`);
    const refused = this.credentialsRefused(err, what, message);
    if (refused) return refused;
    if (isUnreachable(err)) return unavailable(`etcd at ${this.endpoints} is unreachable (${what}): ${message}`, err);
    if (err instanceof GRPCInvalidArgumentError) return invalidArgument(`etcd ${what}: ${message}`);
    if (err instanceof GRPCFailedPreconditionError) return failedPrecondition(`etcd ${what}: ${message}`);
    if (err instanceof GRPCResourceExhastedError) return new MeshError(status.RESOURCE_EXHAUSTED, `etcd ${what}: ${message}`, false, { cause: err });
    return internal(`etcd ${what}: ${message}`, err);
  }

  /**
   * etcd said who we are is not good enough: a TLS alert from a server that wants client certificates (grpc-js reports
   * it as UNAVAILABLE, which would otherwise read as "unreachable" and be retried), a wrong or missing user/password,
   * or a user without permission. Not retryable: only new credentials help. Messages name the user, never secrets.
   */
  private credentialsRefused(err: unknown, what: string, message: string): MeshError | undefined {
    const at = `etcd at ${this.endpoints}`;
    const refused = (code: status, text: string) => new MeshError(code, text, false, { cause: err });
    const alert = TLS_ALERT.exec(message)?.[1];
    if (alert !== undefined) {
      return refused(status.UNAUTHENTICATED, this.hasClientCertificate
        ? `${at} rejected the client certificate (${what}): TLS alert "${alert}"; check that etcd's --trusted-ca-file signs client_certificate[_file]`
        : `${at} requires a client certificate (${what}): TLS alert "${alert}"; set client_certificate[_file] and client_key[_file] in etcd_connection`);
    }
    const said = message.replace(/^\d+ [A-Z_]+: /, '').replace(/^etcdserver: /, '');
    if (err instanceof EtcdAuthenticationFailedError || err instanceof GRPCUnauthenticatedError) {
      return refused(status.UNAUTHENTICATED, this.username === undefined
        ? `${at} refused the connection (${what}): ${said}`
        : `${at} authentication failed for user '${this.username}' (${what}): ${said}; check userid and password in etcd_connection`);
    }
    if (/user name is empty/.test(message)) {
      return refused(status.UNAUTHENTICATED, `${at} requires a user and password (${what}): authentication is on; set userid and password in etcd_connection`);
    }
    if (err instanceof EtcdPermissionDeniedError) {
      const who = this.username === undefined ? '' : ` to user '${this.username}'`;
      return refused(status.PERMISSION_DENIED, `${at} denied ${what}${who}: ${said}; grant the user readwrite on the root_prefix`);
    }
    return undefined;
  }

  /** @internal */
  forgetLease(lease: EtcdLeaseHandle): void {
    this.leases.delete(lease);
  }

  /** @internal */
  deadline(): { deadline: number } {
    return { deadline: Date.now() + this.timeoutMs };
  }

  /** @internal */
  unreachableMessage(what: string): string {
    return `etcd at ${this.endpoints} is unreachable (${what})`;
  }

  private async readPages(prefix: string): Promise<KvSnapshot> {
    const start = Buffer.concat([this.ns, Buffer.from(prefix, 'utf8')]);
    const end = prefixRangeEnd(start);
    const entries: KvEntry[] = [];
    let from = start;
    let revision = 0;
    for (let page = 1; ; page++) {
      // Every page after the first reads at the first page's revision, so the pages form one snapshot.
      const res = await this.call(`get prefix ${prefix} (page ${page})`, () => this.client.kv.range({
        key: from, range_end: end, limit: this.pageSize, revision: revision || undefined,
      }, this.deadline()));
      if (!revision) revision = Number(res.header.revision);
      for (const kv of res.kvs) entries.push(this.toEntry(kv));
      if (!res.more || res.kvs.length === 0) break;
      from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
    return { entries, revision };
  }

  private rangeResult(kvs: IKeyValue[] | undefined): KvEntry | undefined {
    return kvs && kvs.length > 0 ? this.toEntry(kvs[0]) : undefined;
  }

  private toEntry(kv: IKeyValue): KvEntry {
    return toEntry(kv, this.ns.length);
  }

  private fullKey(key: string): Buffer {
    return Buffer.concat([this.ns, Buffer.from(key, 'utf8')]);
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new KvStoreClosedError(this.description, what);
  }
}

/**
 * etcd3 (1.1.2) exchanges userid/password for a token over a channel built without `grpcOptions`, so
 * `override_authority` would not apply to it and TLS verification of that one call fails. Route the exchange through
 * a short-lived client built with the same options (minus auth). Left alone if etcd3's internals differ.
 */
function authenticateWithChannelOptions(client: Etcd3, options: IOptions): void {
  type TokenExchange = (address: string, name: string, password: string, callOptions?: CallOptions) => Promise<string>;
  const authenticator = (client as unknown as { pool?: { authenticator?: { getCredentialsFromHost?: TokenExchange } } }).pool?.authenticator;
  if (typeof authenticator?.getCredentialsFromHost !== 'function') return;
  authenticator.getCredentialsFromHost = async (address, name, password, callOptions) => {
    const exchange = new Etcd3({ ...options, hosts: [address], auth: undefined });
    try {
      return (await exchange.auth.authenticate({ name, password }, callOptions)).token;
    } finally {
      exchange.close();
    }
  };
}

/**
 * Fails at start, naming the fields, when the PEM material is unusable: grpc-js would otherwise report a bare OpenSSL
 * code ("DECODER routines::unsupported") on the first call. OpenSSL's reasons never quote the material.
 */
function checkTlsMaterial(tls: EtcdTls): void {
  const check = (fields: string, options: SecureContextOptions) => {
    try {
      createSecureContext(options);
    } catch (err) {
      throw invalidArgument(`etcd_connection: ${fields}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  if (tls.ca) check('certificate[_file] is not a usable PEM CA certificate', { ca: tls.ca });
  if (tls.clientKey) {
    check('client_certificate[_file] and client_key[_file] are not a usable PEM certificate and matching key',
      { cert: tls.clientCertificate, key: tls.clientKey.reveal() });
  }
}

/** The compare of one guarded write: equal mod revision, or "never created" for 0. */
function guard(key: Buffer, expectedModRevision: number): ICompare {
  return expectedModRevision === 0
    ? { key, target: 'Create', result: 'Equal', create_revision: 0 }
    : { key, target: 'Mod', result: 'Equal', mod_revision: expectedModRevision };
}

function checkRevision(revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 0) throw invalidArgument(`expected mod revision must be an integer >= 0, got ${revision}`);
}

/** The alert a TLS server sent when it refused our certificate, from OpenSSL's text (e.g. `sslv3 alert bad certificate`). */
const TLS_ALERT = /alert (bad certificate|certificate required|unknown ca|certificate unknown|certificate revoked|certificate expired|unsupported certificate|access denied)/;

/** Errors that mean "etcd could not be reached or did not answer", as opposed to "etcd said no". */
function isUnreachable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (err instanceof GRPCDeadlineExceededError || isRecoverableError(err as Error)) return true;
  const name = (err as Error).constructor?.name ?? '';
  const message = err instanceof Error ? err.message : '';
  return name === 'BrokenCircuitError' || name === 'TaskCancelledError'
    || /etcdserver: (request timed out|no leader|leader changed|server stopped|too many requests)/.test(message)
    || /No connection established|ECONNREFUSED|connect ETIMEDOUT/.test(message);
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(onTimeout()), ms); }),
  ]).finally(() => clearTimeout(timer));
}
