/**
 * The store the mesh coordinates through. Two implementations: etcd (`etcd-store.ts`, every multi-process
 * deployment) and embedded (`embedded-store.ts`, one process only, for `modelmesh dev`). One behavioural test
 * suite runs against both.
 *
 * Keys are strings relative to the store's namespace (`<root_prefix>/<MM_KVSTORE_PREFIX>/<service>/`), values are
 * UTF-8 strings (the modules above store JSON). Every write that another instance may race with is a
 * compare-and-set on the key's mod revision.
 *
 * Errors are MeshErrors (`../errors`): UNAVAILABLE (retryable) when the store cannot be reached within the
 * configured time bound, with a message naming the endpoints; `KvLeaseNotFoundError` (FAILED_PRECONDITION) for a
 * write bound to a lease that has ended; `KvStoreClosedError` after `close()`; UNAUTHENTICATED or PERMISSION_DENIED (not retryable) when etcd refuses the
 * client certificate, the user and password, or the user's access to the prefix; INVALID_ARGUMENT for a malformed
 * request (a negative revision, a key named twice in one transaction). A call that failed on the transport may still
 * have been applied; callers that must know re-read.
 */

export interface KvEntry {
  readonly key: string;
  readonly value: string;
  /** Revision of the last write to this key; the CAS token. */
  readonly modRevision: number;
  /** Lease the key is bound to, if any. */
  readonly lease?: string;
}

/** A point-in-time read of every key under a prefix. */
export interface KvSnapshot {
  readonly entries: KvEntry[];
  /** Store revision the snapshot was taken at; a watch from `revision + 1` misses nothing. */
  readonly revision: number;
}

export type KvEvent =
  | { readonly type: 'put'; readonly entry: KvEntry }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: number };

export interface PutOptions {
  /** Bind the key to this lease: it is deleted when the lease ends. */
  readonly lease?: Lease;
}

export interface CasResult {
  /** Whether the write happened. */
  readonly succeeded: boolean;
  /** The key's entry after the call: the new one on success, the conflicting one (or undefined) on failure. */
  readonly entry?: KvEntry;
}

/** One guarded write of a transaction: applied only if every guard in the transaction holds. */
export interface TxnOp {
  readonly key: string;
  /** The key's current mod revision, or 0 for "must not exist". */
  readonly expectedModRevision: number;
  /** New value; `undefined` deletes the key. */
  readonly value?: string;
  readonly lease?: Lease;
}

/** A transaction's outcome; on success, the revision every written key now has (its new CAS token). */
export type TxnResult = { readonly succeeded: true; readonly revision: number } | { readonly succeeded: false };

/** A time-bound grant; keys bound to it vanish when it is revoked or expires unrenewed. */
export interface Lease {
  readonly id: string;
  readonly ttlSeconds: number;
  /**
   * Called once when the lease is known to be gone (expired while the store was unreachable, or revoked
   * elsewhere). The keys bound to it are gone too; the owner must grant a new lease and republish.
   */
  onLost(listener: (err: Error) => void): void;
  /** Ends the lease now, deleting its keys. */
  revoke(): Promise<void>;
}

/** A running watch. */
export interface Watch {
  cancel(): Promise<void>;
}

export interface WatchHandlers {
  /**
   * Events in revision order, each exactly once, in batches (all events of one revision are in one batch). Called
   * asynchronously, never inside the write that caused them; must not throw.
   */
  readonly onEvents: (events: readonly KvEvent[]) => void;
  /**
   * The watch could not continue from where it was (for example the start revision was compacted) and has ended;
   * the error is a `KvResyncNeededError`. The caller must re-read (`getPrefix`) and watch again from the new
   * revision (`KvMirror` does this).
   */
  readonly onResyncNeeded?: (err: Error) => void;
}

export interface KvStore {
  /** Human-readable description for logs (`etcd http://…/ prefix /mm/svc/`, `embedded`). */
  readonly description: string;

  get(key: string): Promise<KvEntry | undefined>;
  /** Every key under `prefix` (paginated internally; safe for 100k+ keys). */
  getPrefix(prefix: string): Promise<KvSnapshot>;

  /** Unconditional write; resolves with the new mod revision. */
  put(key: string, value: string, options?: PutOptions): Promise<number>;
  /**
   * Writes only if the key's mod revision equals `expectedModRevision`; `0` means "only if the key does not
   * exist".
   */
  putIfModRevision(key: string, value: string, expectedModRevision: number, options?: PutOptions): Promise<CasResult>;
  /** Unconditional delete; resolves with whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Deletes only if the key's mod revision equals `expectedModRevision`. */
  deleteIfModRevision(key: string, expectedModRevision: number): Promise<CasResult>;

  /**
   * All-or-nothing: applies every op if every op's guard holds, else none. Used where one decision touches
   * several records (a vmodel and the refcounts of its models).
   */
  transact(ops: readonly TxnOp[]): Promise<TxnResult>;

  /**
   * Watches every key under `prefix`, starting at `fromRevision` (inclusive; 0 or less: from the next write). A
   * connection that breaks is resumed after the last delivered event. Resolves once the watch is established.
   */
  watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch>;

  /** Grants a lease (TTL in whole seconds, >= 1) kept alive by the store client until revoked or the store is closed. */
  grantLease(ttlSeconds: number): Promise<Lease>;

  /** Stops watches and keep-alives and releases connections. Leases are left to expire unless revoked first. */
  close(): Promise<void>;
}
