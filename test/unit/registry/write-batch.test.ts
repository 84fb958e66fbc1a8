import { EmbeddedBackend, EmbeddedStore } from '../../../runtime/src/kv/embedded-store';
import { KvStore, TxnOp } from '../../../runtime/src/kv/store';
import { WriteBatcher } from '../../../runtime/src/registry/write-batch';

/** An embedded store that counts the calls the batcher makes. */
function countingStore(): { store: KvStore; calls: { transact: TxnOp[][]; single: number } } {
  const inner = new EmbeddedStore({ serviceName: 'svc', backend: new EmbeddedBackend() });
  const calls = { transact: [] as TxnOp[][], single: 0 };
  const store: KvStore = Object.assign(Object.create(inner) as KvStore, {
    transact: (ops: readonly TxnOp[]) => {
      calls.transact.push([...ops]);
      return inner.transact(ops);
    },
    putIfModRevision: (key: string, value: string, expected: number) => {
      calls.single++;
      return inner.putIfModRevision(key, value, expected);
    },
    deleteIfModRevision: (key: string, expected: number) => {
      calls.single++;
      return inner.deleteIfModRevision(key, expected);
    },
  });
  return { store, calls };
}

describe('WriteBatcher', () => {
  test('writes issued together commit in one transaction, each told its new revision', async () => {
    const { store, calls } = countingStore();
    const batcher = new WriteBatcher(store);
    const results = await Promise.all(['a', 'b', 'c'].map((key) => batcher.write(key, `v-${key}`, 0)));
    expect(calls.transact).toHaveLength(1);
    expect(calls.single).toBe(0);
    const revision = results[0].entry!.modRevision;
    expect(results.map((r) => [r.succeeded, r.entry?.key, r.entry?.modRevision])).toEqual([
      [true, 'a', revision], [true, 'b', revision], [true, 'c', revision],
    ]);
    expect((await store.get('b'))?.modRevision).toBe(revision);
  });

  test('a failed guard sends each write on its own, so only the conflicting one fails', async () => {
    const { store, calls } = countingStore();
    const existing = await store.put('taken', 'old');
    const batcher = new WriteBatcher(store);
    const [fresh, taken, removed] = await Promise.all([
      batcher.write('fresh', 'new', 0),
      batcher.write('taken', 'new', 0),
      batcher.write('taken-too', undefined, 0),
    ]);
    expect(calls.transact).toHaveLength(1);
    expect(calls.single).toBe(3);
    expect(fresh.succeeded).toBe(true);
    expect(taken).toEqual({ succeeded: false, entry: expect.objectContaining({ key: 'taken', value: 'old', modRevision: existing }) });
    expect(removed.succeeded).toBe(true);
  });

  test('a key written twice at once goes in a later transaction, and batches hold at most maxOps writes', async () => {
    const { store, calls } = countingStore();
    const batcher = new WriteBatcher(store, 2);
    const results = await Promise.all([batcher.write('k', '1', 0), batcher.write('k', '2', 0), batcher.write('x', '1', 0), batcher.write('y', '1', 0)]);
    expect(calls.transact.map((ops) => ops.map((op) => op.key))).toEqual([['k', 'x'], ['k', 'y']]);
    // The second batch's guard on k fails (the first created it): its writes retry alone, and only k's second write fails.
    expect(results.map((r) => r.succeeded)).toEqual([true, false, true, true]);
    expect((await store.get('k'))?.value).toBe('1');
  });
});
