import { invalidArgument } from '../errors';
import { checkTtl, duplicateTxnKey, KvLeaseNotFoundError, KvResyncNeededError, KvStoreClosedError } from './errors';
import { storeNamespace } from './namespace';
import {
  CasResult, KvEntry, KvEvent, KvSnapshot, KvStore, Lease, PutOptions, TxnOp, TxnResult, Watch, WatchHandlers,
} from './store';

/**
 * The embedded store: etcd's semantics (one revision counter, mod-revision CAS, all-or-nothing transactions, prefix
 * watches replayable from a revision within a bounded history, leases that expire on timers and take their keys
 * with them) held in this process's memory.
 *
 * **Single process only.** Nothing is persisted or shared with other processes: it is for `modelmesh dev` and tests.
 * Every multi-process deployment uses etcd.
 *
 * An `EmbeddedBackend` holds the data; each `EmbeddedStore` is one client of it with its own namespace, watches and
 * lease keep-alives, the way several etcd clients share one server. Closing a client stops its keep-alives, so its
 * leases expire after their TTL as they would in etcd.
 */

interface StoredKey {
  /** Full key, namespace included. */
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
  readonly createRevision: number;
  readonly lease?: string;
}

type BackendEvent =
  | { readonly type: 'put'; readonly record: StoredKey }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: number };

interface HistoryItem {
  readonly revision: number;
  readonly events: readonly BackendEvent[];
}

interface LeaseRecord {
  readonly id: string;
  readonly keys: Set<string>;
  readonly timer: NodeJS.Timeout;
  /** Told when the lease ends other than through its owner's own revoke. */
  readonly onGone: (how: 'expired' | 'revoked') => void;
}

interface Subscriber {
  readonly prefix: string;
  push(events: readonly BackendEvent[]): void;
}

/** One write of a commit; `value` undefined deletes. */
interface WriteOp {
  readonly key: string;
  readonly value?: string;
  readonly lease?: string;
}

export interface EmbeddedBackendOptions {
  /**
   * Revisions of history kept for watches that start in the past; a watch from an older revision gets
   * `onResyncNeeded`, as etcd does after compaction. @default 10000
   */
  readonly historyLimit?: number;
}

/** The data of one in-process store, shared by its clients. */
export class EmbeddedBackend {
  private readonly data = new Map<string, StoredKey>();
  private readonly leases = new Map<string, LeaseRecord>();
  private readonly subscribers = new Set<Subscriber>();
  private history: HistoryItem[] = [];
  private historyStart = 0;
  private readonly historyLimit: number;
  // etcd starts at revision 1 with no keys; the first write is revision 2.
  private currentRevision = 1;
  private compacted = 0;
  private nextLeaseId = 1;

  constructor(options: EmbeddedBackendOptions = {}) {
    this.historyLimit = Math.max(1, options.historyLimit ?? 10_000);
  }

  get revision(): number {
    return this.currentRevision;
  }

  /** Forgets history up to and including `revision` (default: now): watches from there need a resync. */
  compact(revision = this.currentRevision): void {
    while (this.historyStart < this.history.length && this.history[this.historyStart].revision <= revision) this.historyStart++;
    this.compacted = Math.max(this.compacted, Math.min(revision, this.currentRevision));
    this.trimHistory();
  }

  /** Ends a lease as if revoked by another process (its owner is told it was lost). */
  revokeLease(id: string): boolean {
    const lease = this.leases.get(id);
    if (!lease) return false;
    this.endLease(lease);
    lease.onGone('revoked');
    return true;
  }

  /** @internal */
  read(key: string): StoredKey | undefined {
    return this.data.get(key);
  }

  /** @internal Every record under `prefix`, in key order as etcd returns them. */
  range(prefix: string): StoredKey[] {
    const out: StoredKey[] = [];
    for (const record of this.data.values()) if (record.key.startsWith(prefix)) out.push(record);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** @internal Whether `key`'s mod revision is `expected` (0: the key does not exist). */
  holds(key: string, expected: number): boolean {
    const record = this.data.get(key);
    return expected === 0 ? record === undefined : record?.modRevision === expected;
  }

  /** @internal Applies every write at one new revision (none if nothing changes) and returns the store revision. */
  commit(ops: readonly WriteOp[], context: string): number {
    for (const op of ops) {
      if (op.value !== undefined && op.lease !== undefined && !this.leases.has(op.lease)) throw new KvLeaseNotFoundError(op.lease, context);
    }
    const revision = this.currentRevision + 1;
    const events: BackendEvent[] = [];
    for (const op of ops) {
      const previous = this.data.get(op.key);
      // A key leaves its lease when deleted or rewritten without it (etcd: a put carries its lease or none).
      if (previous?.lease !== undefined && (op.value === undefined || previous.lease !== op.lease)) {
        this.leases.get(previous.lease)?.keys.delete(op.key);
      }
      if (op.value === undefined) {
        if (!previous) continue;
        this.data.delete(op.key);
        events.push({ type: 'delete', key: op.key, modRevision: revision });
      } else {
        const createRevision = previous?.createRevision ?? revision;
        const record: StoredKey = { key: op.key, value: op.value, modRevision: revision, createRevision, lease: op.lease };
        this.data.set(op.key, record);
        if (op.lease !== undefined) this.leases.get(op.lease)?.keys.add(op.key);
        events.push({ type: 'put', record });
      }
    }
    if (events.length === 0) return this.currentRevision;
    this.currentRevision = revision;
    this.history.push({ revision, events });
    this.trimHistory();
    for (const subscriber of this.subscribers) {
      const matching = events.filter((ev) => (ev.type === 'put' ? ev.record.key : ev.key).startsWith(subscriber.prefix));
      if (matching.length > 0) subscriber.push(matching);
    }
    return revision;
  }

  /**
   * @internal Registers `subscriber` for writes from `fromRevision` on, handing it the history since then first.
   * Returns false when that history is gone.
   */
  subscribe(subscriber: Subscriber, fromRevision: number): boolean {
    if (fromRevision <= this.compacted) return false;
    const replay: BackendEvent[] = [];
    for (let i = this.historyStart; i < this.history.length; i++) {
      const item = this.history[i];
      if (item.revision < fromRevision) continue;
      for (const ev of item.events) if ((ev.type === 'put' ? ev.record.key : ev.key).startsWith(subscriber.prefix)) replay.push(ev);
    }
    if (replay.length > 0) subscriber.push(replay);
    this.subscribers.add(subscriber);
    return true;
  }

  /** @internal */
  unsubscribe(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
  }

  /** @internal */
  grant(ttlSeconds: number, onGone: LeaseRecord['onGone']): string {
    const id = String(this.nextLeaseId++);
    const timer = setTimeout(() => this.expire(id), ttlSeconds * 1000);
    // An in-process store must not keep Node alive by itself.
    timer.unref();
    this.leases.set(id, { id, keys: new Set(), timer, onGone });
    return id;
  }

  /** @internal Renews a lease; false when it is gone. */
  keepAlive(id: string): boolean {
    const lease = this.leases.get(id);
    lease?.timer.refresh();
    return lease !== undefined;
  }

  /** @internal Ends a lease at its owner's request. */
  revokeOwn(id: string): void {
    const lease = this.leases.get(id);
    if (lease) this.endLease(lease);
  }

  private expire(id: string): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    this.endLease(lease);
    lease.onGone('expired');
  }

  private endLease(lease: LeaseRecord): void {
    clearTimeout(lease.timer);
    this.leases.delete(lease.id);
    // All of a lease's keys go in one revision, as etcd deletes them.
    this.commit([...lease.keys].map((key) => ({ key })), `end of lease ${lease.id}`);
  }

  private trimHistory(): void {
    while (this.history.length - this.historyStart > this.historyLimit) {
      this.compacted = this.history[this.historyStart].revision;
      this.historyStart++;
    }
    // Reclaim the dropped head now and then rather than shifting on every write.
    if (this.historyStart > 1024 && this.historyStart * 2 > this.history.length) {
      this.history = this.history.slice(this.historyStart);
      this.historyStart = 0;
    }
  }
}

export interface EmbeddedStoreOptions {
  /** `MM_SERVICE_NAME`: the last part of the namespace. */
  readonly serviceName: string;
  /** `MM_KVSTORE_PREFIX`. @default 'mm' */
  readonly kvPrefix?: string;
  /** Share data with other clients (other stores in this process). @default a new, private backend */
  readonly backend?: EmbeddedBackend;
}

/** A client of an `EmbeddedBackend`; see the module comment. Single process only. */
export class EmbeddedStore implements KvStore {
  readonly description: string;
  readonly namespace: string;
  readonly backend: EmbeddedBackend;
  private readonly watches = new Set<EmbeddedWatch>();
  private readonly leases = new Set<EmbeddedLease>();
  private closed = false;

  constructor(options: EmbeddedStoreOptions) {
    this.backend = options.backend ?? new EmbeddedBackend();
    this.namespace = storeNamespace('', options.kvPrefix ?? 'mm', options.serviceName);
    this.description = `embedded (single process) prefix ${this.namespace}`;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.assertOpen(`get ${key}`);
    const record = this.backend.read(this.namespace + key);
    return record && this.toEntry(record);
  }

  async getPrefix(prefix: string): Promise<KvSnapshot> {
    this.assertOpen(`get prefix ${prefix}`);
    return { entries: this.backend.range(this.namespace + prefix).map((r) => this.toEntry(r)), revision: this.backend.revision };
  }

  async put(key: string, value: string, options?: PutOptions): Promise<number> {
    const what = `put ${key}`;
    this.assertOpen(what);
    return this.backend.commit([{ key: this.namespace + key, value, lease: options?.lease?.id }], what);
  }

  async putIfModRevision(key: string, value: string, expectedModRevision: number, options?: PutOptions): Promise<CasResult> {
    const what = `put ${key} if mod revision ${expectedModRevision}`;
    this.assertOpen(what);
    checkRevision(expectedModRevision);
    const full = this.namespace + key;
    if (!this.backend.holds(full, expectedModRevision)) return { succeeded: false, entry: this.current(full) };
    this.backend.commit([{ key: full, value, lease: options?.lease?.id }], what);
    return { succeeded: true, entry: this.current(full) };
  }

  async delete(key: string): Promise<boolean> {
    const what = `delete ${key}`;
    this.assertOpen(what);
    const full = this.namespace + key;
    const existed = this.backend.read(full) !== undefined;
    this.backend.commit([{ key: full }], what);
    return existed;
  }

  async deleteIfModRevision(key: string, expectedModRevision: number): Promise<CasResult> {
    const what = `delete ${key} if mod revision ${expectedModRevision}`;
    this.assertOpen(what);
    checkRevision(expectedModRevision);
    const full = this.namespace + key;
    if (!this.backend.holds(full, expectedModRevision)) return { succeeded: false, entry: this.current(full) };
    this.backend.commit([{ key: full }], what);
    return { succeeded: true };
  }

  async transact(ops: readonly TxnOp[]): Promise<TxnResult> {
    const what = `transaction on ${ops.length} keys`;
    this.assertOpen(what);
    const seen = new Set<string>();
    for (const op of ops) {
      checkRevision(op.expectedModRevision);
      if (seen.has(op.key)) throw duplicateTxnKey(op.key);
      seen.add(op.key);
    }
    if (!ops.every((op) => this.backend.holds(this.namespace + op.key, op.expectedModRevision))) return { succeeded: false };
    const revision = this.backend.commit(ops.map((op) => ({ key: this.namespace + op.key, value: op.value, lease: op.lease?.id })), what);
    return { succeeded: true, revision };
  }

  async watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    this.assertOpen(`watch ${prefix}`);
    const start = fromRevision > 0 ? fromRevision : this.backend.revision + 1;
    const watch = new EmbeddedWatch(this.namespace, prefix, handlers, this.backend, (w) => this.watches.delete(w));
    if (this.backend.subscribe(watch, start)) {
      this.watches.add(watch);
    } else {
      watch.resyncNeeded(start);
    }
    return watch;
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.assertOpen(`grant lease (TTL ${ttlSeconds}s)`);
    checkTtl(ttlSeconds);
    const lease = new EmbeddedLease(this.backend, ttlSeconds, (l) => this.leases.delete(l));
    this.leases.add(lease);
    return lease;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of [...this.watches]) await watch.cancel();
    for (const lease of [...this.leases]) lease.release();
  }

  private current(fullKey: string): KvEntry | undefined {
    const record = this.backend.read(fullKey);
    return record && this.toEntry(record);
  }

  private toEntry(record: StoredKey): KvEntry {
    return { key: record.key.slice(this.namespace.length), value: record.value, modRevision: record.modRevision, lease: record.lease };
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new KvStoreClosedError(this.description, what);
  }
}

function checkRevision(revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 0) throw invalidArgument(`expected mod revision must be an integer >= 0, got ${revision}`);
}

/** Queues events and hands them over on a microtask, in order, as a network client would: never inside the write. */
class EmbeddedWatch implements Watch, Subscriber {
  readonly prefix: string;
  private queue: BackendEvent[] = [];
  private scheduled = false;
  private ended = false;

  constructor(
    private readonly namespace: string,
    private readonly relativePrefix: string,
    private readonly handlers: WatchHandlers,
    private readonly backend: EmbeddedBackend,
    private readonly onEnd: (watch: EmbeddedWatch) => void,
  ) {
    this.prefix = namespace + relativePrefix;
  }

  push(events: readonly BackendEvent[]): void {
    for (const ev of events) this.queue.push(ev);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  resyncNeeded(fromRevision: number): void {
    this.ended = true;
    const reason = new KvResyncNeededError(
      `embedded store: history at revision ${fromRevision} is gone (compacted or past the history limit), so the watch on ${this.relativePrefix || '(all keys)'} cannot replay it; re-read and watch again`);
    setImmediate(() => this.handlers.onResyncNeeded?.(reason));
  }

  async cancel(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    this.backend.unsubscribe(this);
    this.onEnd(this);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.ended || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const cut = this.namespace.length;
    this.handlers.onEvents(batch.map((ev): KvEvent => (ev.type === 'put'
      ? { type: 'put', entry: { key: ev.record.key.slice(cut), value: ev.record.value, modRevision: ev.record.modRevision, lease: ev.record.lease } }
      : { type: 'delete', key: ev.key.slice(cut), modRevision: ev.modRevision })));
  }
}

class EmbeddedLease implements Lease {
  readonly id: string;
  private readonly listeners: ((err: Error) => void)[] = [];
  private lostError?: Error;
  private ended = false;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(private readonly backend: EmbeddedBackend, readonly ttlSeconds: number, private readonly onEnd: (lease: EmbeddedLease) => void) {
    this.id = backend.grant(ttlSeconds, (how) => this.lose(new KvLeaseNotFoundError(this.id, `embedded lease ${how}`)));
    // Renew three times per TTL, as etcd clients do; stopping (close) lets the lease expire on the backend's timer.
    this.keepAlive = setInterval(() => {
      if (!backend.keepAlive(this.id)) this.lose(new KvLeaseNotFoundError(this.id, 'embedded keep-alive'));
    }, (ttlSeconds * 1000) / 3);
    this.keepAlive.unref();
  }

  onLost(listener: (err: Error) => void): void {
    if (this.lostError) {
      const err = this.lostError;
      setImmediate(() => listener(err));
    } else {
      this.listeners.push(listener);
    }
  }

  async revoke(): Promise<void> {
    this.stop();
    this.backend.revokeOwn(this.id);
  }

  /** Stops renewing; the lease expires after its TTL. */
  release(): void {
    this.stop();
  }

  private stop(): void {
    this.ended = true;
    clearInterval(this.keepAlive);
    this.onEnd(this);
  }

  private lose(err: Error): void {
    if (this.ended) return;
    this.stop();
    this.lostError = err;
    for (const listener of this.listeners.splice(0)) listener(err);
  }
}
