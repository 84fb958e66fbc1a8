import { CasResult, KvStore, TxnOp } from '../kv/store';

/**
 * Compare-and-set writes issued in the same turn of the event loop go to the store as one transaction: etcd
 * commits (and syncs to disk) once per transaction, so a burst of registrations or load claims costs one round
 * trip instead of one per record. Each write keeps its own outcome: when any guard of a batch fails, nothing was
 * applied and every write of it is retried on its own, which tells each caller whether the conflict was its own.
 */

/** etcd's default `--max-txn-ops`. */
export const MAX_BATCH_OPS = 128;

interface Pending {
  readonly op: TxnOp;
  readonly resolve: (result: CasResult) => void;
  readonly reject: (err: unknown) => void;
}

export class WriteBatcher {
  private queued: Pending[] = [];
  private scheduled = false;

  constructor(private readonly store: KvStore, private readonly maxOps = MAX_BATCH_OPS) {}

  /** Writes `value` (undefined: deletes) if the key's mod revision is `expectedModRevision` (0: absent). */
  write(key: string, value: string | undefined, expectedModRevision: number): Promise<CasResult> {
    return new Promise((resolve, reject) => {
      this.queued.push({ op: { key, value, expectedModRevision }, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const queued = this.queued;
    this.queued = [];
    // A transaction names each key once: a second write to a key goes in a later batch.
    const batches: Array<{ pending: Pending[]; keys: Set<string> }> = [];
    for (const pending of queued) {
      let batch = batches.find((b) => b.pending.length < this.maxOps && !b.keys.has(pending.op.key));
      if (!batch) batches.push(batch = { pending: [], keys: new Set() });
      batch.pending.push(pending);
      batch.keys.add(pending.op.key);
    }
    for (const batch of batches) void this.send(batch.pending);
  }

  private async send(batch: readonly Pending[]): Promise<void> {
    if (batch.length > 1) {
      let result;
      try {
        result = await this.store.transact(batch.map((p) => p.op));
      } catch (err) {
        for (const p of batch) p.reject(err);
        return;
      }
      if (result.succeeded) {
        for (const { op, resolve } of batch) {
          resolve(op.value === undefined
            ? { succeeded: true }
            : { succeeded: true, entry: { key: op.key, value: op.value, modRevision: result.revision } });
        }
        return;
      }
    }
    await Promise.all(batch.map((p) => this.single(p)));
  }

  private async single({ op, resolve, reject }: Pending): Promise<void> {
    try {
      resolve(op.value === undefined
        ? await this.store.deleteIfModRevision(op.key, op.expectedModRevision)
        : await this.store.putIfModRevision(op.key, op.value, op.expectedModRevision));
    } catch (err) {
      reject(err);
    }
  }
}
