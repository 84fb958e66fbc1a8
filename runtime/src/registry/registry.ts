import { status } from '@grpc/grpc-js';
import { MeshError } from '../errors';
import { ModelRecord, RecordError, VModelRecord, decodeModel, decodeVModel, encodeRecord } from './records';
import { WriteBatcher } from './write-batch';
import { KvEntry, KvStore, TxnOp } from '../kv/store';

/**
 * Model and vmodel records: a decoded local view kept current from the store's watch, and compare-and-set updates
 * that retry on conflict. Reads are local and eventually consistent; `read*` methods go to the store.
 */

export const MODELS_PREFIX = 'registry/';
export const VMODELS_PREFIX = 'vmodels/';

/** Returned by a mutation to leave the record as it is. */
export const UNCHANGED = Symbol('unchanged');
/** Returned by a mutation to delete the record. */
export const DELETE = Symbol('delete');

export type Mutation<T> = (current: T | undefined) => T | typeof UNCHANGED | typeof DELETE;

/** The change feed the registry needs from a store mirror. */
export interface ChangeFeed {
  /** `revision` is the entry's mod revision, or the revision of the delete. */
  onChange(listener: (key: string, entry: KvEntry | undefined, revision: number) => void): void;
}

interface Held<T> {
  readonly record: T;
  readonly modRevision: number;
}

type Listener<T> = (id: string, record: T | undefined) => void;

const MAX_CAS_ATTEMPTS = 30;

class RecordTable<T> {
  private readonly records = new Map<string, Held<T>>();
  private readonly listeners: Listener<T>[] = [];
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly store: KvStore,
    private readonly writes: WriteBatcher,
    private readonly prefix: string,
    private readonly decode: (id: string, raw: string) => T,
    private readonly onMalformed: (err: Error) => void,
  ) {}

  get size(): number {
    return this.records.size;
  }

  get(id: string): T | undefined {
    return this.records.get(id)?.record;
  }

  *entries(): IterableIterator<[string, T]> {
    for (const [id, held] of this.records) yield [id, held.record];
  }

  *values(): IterableIterator<T> {
    for (const held of this.records.values()) yield held.record;
  }

  ids(): IterableIterator<string> {
    return this.records.keys();
  }

  onChange(listener: Listener<T>): void {
    this.listeners.push(listener);
  }

  /**
   * Applies a change seen on the store. Changes can arrive out of order (a strong read overtakes the watch), so
   * anything older than what is held is ignored; `revision` is the delete's revision for deletes.
   */
  apply(key: string, entry: KvEntry | undefined, revision = entry?.modRevision ?? Number.MAX_SAFE_INTEGER): void {
    if (!key.startsWith(this.prefix)) return;
    const id = key.slice(this.prefix.length);
    const current = this.records.get(id);
    if (current && current.modRevision >= revision) return;
    if (entry) {
      let record: T;
      try {
        record = this.decode(id, entry.value);
      } catch (err) {
        this.onMalformed(err as Error);
        return;
      }
      this.records.set(id, { record, modRevision: entry.modRevision });
      this.emit(id, record);
    } else if (this.records.delete(id)) {
      this.emit(id, undefined);
    }
  }

  private emit(id: string, record: T | undefined): void {
    for (const listener of this.listeners) listener(id, record);
    this.recheck(id);
  }

  /** Makes `waitFor` predicates on `id` look again: for state they read beside the record (this instance's cache). */
  recheck(id: string): void {
    const waiting = this.waiters.get(id);
    if (waiting) for (const wake of [...waiting]) wake();
  }

  /** Resolves with the record once `predicate` holds for it (checked now and on every change), or rejects at the deadline. */
  waitFor(id: string, predicate: (record: T | undefined) => boolean, deadline: number, what: string): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      if (predicate(this.get(id))) {
        resolve(this.get(id));
        return;
      }
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, set = new Set());
      const done = () => {
        clearTimeout(timer);
        set!.delete(check);
        if (set!.size === 0) this.waiters.delete(id);
      };
      const check = () => {
        const record = this.get(id);
        if (predicate(record)) {
          done();
          resolve(record);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new MeshError(status.DEADLINE_EXCEEDED, `timed out waiting for ${what}`));
      }, Math.max(0, deadline - Date.now()));
      set.add(check);
    });
  }

  /** Strongly consistent read from the store. */
  async read(id: string): Promise<Held<T> | undefined> {
    const entry = await this.store.get(this.prefix + id);
    if (!entry) {
      this.apply(this.prefix + id, undefined);
      return undefined;
    }
    this.apply(entry.key, entry);
    return { record: this.decode(id, entry.value), modRevision: entry.modRevision };
  }

  held(id: string): Held<T> | undefined {
    return this.records.get(id);
  }

  /**
   * Compare-and-set update: `mutate` sees the current record and returns the new one, DELETE or UNCHANGED. On a
   * conflict it runs again on the record that won. Resolves with the record as written (or as left).
   */
  async update(id: string, mutate: Mutation<T>): Promise<T | undefined> {
    const key = this.prefix + id;
    let current: Held<T> | undefined = this.records.get(id);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const next = mutate(current?.record);
      if (next === UNCHANGED) return current?.record;
      if (next === DELETE && !current) return undefined;
      const expected = current?.modRevision ?? 0;
      const result = await this.writes.write(key, next === DELETE ? undefined : encodeRecord(next as ModelRecord), expected);
      if (result.succeeded) {
        this.apply(key, next === DELETE ? undefined : result.entry);
        return next === DELETE ? undefined : next;
      }
      current = result.entry ? { record: this.decode(id, result.entry.value), modRevision: result.entry.modRevision } : undefined;
      if (result.entry) this.apply(key, result.entry);
    }
    throw new MeshError(status.ABORTED, `record ${key} kept changing under ${MAX_CAS_ATTEMPTS} concurrent updates; try again`, true);
  }

  /** A transaction op that writes `next` over `current` (or deletes), guarded by current's revision. */
  op(id: string, current: Held<T> | undefined, next: T | typeof DELETE): TxnOp {
    const value = next === DELETE ? undefined : encodeRecord(next as ModelRecord);
    return { key: this.prefix + id, expectedModRevision: current?.modRevision ?? 0, value };
  }
}

export interface RecordSet {
  readonly models: ReadonlyMap<string, ModelRecord | undefined>;
  readonly vmodels: ReadonlyMap<string, VModelRecord | undefined>;
}

export interface RecordChanges {
  readonly models?: ReadonlyMap<string, ModelRecord | typeof DELETE>;
  readonly vmodels?: ReadonlyMap<string, VModelRecord | typeof DELETE>;
}

export class Registry {
  readonly models: RecordTable<ModelRecord>;
  readonly vmodels: RecordTable<VModelRecord>;

  constructor(private readonly store: KvStore, onMalformed: (err: Error) => void) {
    // One batcher for both tables: a burst of writes to either goes out together.
    const writes = new WriteBatcher(store);
    this.models = new RecordTable(store, writes, MODELS_PREFIX, decodeModel, onMalformed);
    this.vmodels = new RecordTable(store, writes, VMODELS_PREFIX, decodeVModel, onMalformed);
  }

  /** Feeds store changes (registry/ and vmodels/) into the local view. */
  follow(feed: ChangeFeed): void {
    feed.onChange((key, entry, revision) => {
      this.models.apply(key, entry, revision);
      this.vmodels.apply(key, entry, revision);
    });
  }

  /**
   * Atomically updates several model and vmodel records. `decide` sees strongly read current records and returns
   * the changes (or UNCHANGED); on a conflict everything is re-read and `decide` runs again.
   */
  async updateMany<R>(ids: { models: readonly string[]; vmodels: readonly string[] },
    decide: (current: RecordSet) => { changes: RecordChanges | typeof UNCHANGED; result: R }): Promise<R> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const models = new Map(await Promise.all(ids.models.map(async (id) => [id, await this.models.read(id)] as const)));
      const vmodels = new Map(await Promise.all(ids.vmodels.map(async (id) => [id, await this.vmodels.read(id)] as const)));
      const current: RecordSet = {
        models: new Map([...models].map(([id, h]) => [id, h?.record])),
        vmodels: new Map([...vmodels].map(([id, h]) => [id, h?.record])),
      };
      const { changes, result } = decide(current);
      if (changes === UNCHANGED) return result;
      const ops: TxnOp[] = [];
      for (const [id, next] of changes.models ?? []) {
        if (!models.has(id)) throw new Error(`updateMany: model ${id} changed but was not read`);
        if (next === DELETE && !models.get(id)) continue;
        ops.push(this.models.op(id, models.get(id), next));
      }
      for (const [id, next] of changes.vmodels ?? []) {
        if (!vmodels.has(id)) throw new Error(`updateMany: vmodel ${id} changed but was not read`);
        if (next === DELETE && !vmodels.get(id)) continue;
        ops.push(this.vmodels.op(id, vmodels.get(id), next));
      }
      const { succeeded } = await this.store.transact(ops);
      if (succeeded) {
        // Read the written records back so this instance sees its own writes before the watch delivers them.
        await Promise.all([...changes.models?.keys() ?? []].map((id) => this.models.read(id)));
        await Promise.all([...changes.vmodels?.keys() ?? []].map((id) => this.vmodels.read(id)));
        return result;
      }
    }
    throw new MeshError(status.ABORTED, `records ${[...ids.models, ...ids.vmodels].join(', ')} kept changing under concurrent updates; try again`, true);
  }
}

export { RecordError };
