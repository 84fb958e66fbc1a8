import { status } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { etcdHarness } from './harnesses';
import { describeCompaction } from './store-behaviour';
import { TcpProxy } from './tcp-proxy';
import { MeshError } from '../../../runtime/src/errors';
import { EtcdStore, KvMirror, KvResyncNeededError, TxnOp } from '../../../runtime/src/kv';
import { EtcdServer, startEtcd } from '../../harness/etcd';
import { uniquePrefix } from '../../harness/shared-etcd';
import { waitFor } from '../../harness/wait';

/** Tests that compact history or stop the server, on an etcd of their own so no other test file notices. */

let etcd: EtcdServer;
beforeAll(async () => { etcd = await startEtcd(); });
afterAll(async () => { await etcd?.stop(); });

const storeOn = (endpoint: string, rootPrefix: string, extra: Partial<ConstructorParameters<typeof EtcdStore>[0]> = {}) =>
  new EtcdStore({ connection: { endpoints: [endpoint], rootPrefix }, serviceName: 'svc', kvPrefix: 'mm', ...extra });

describeCompaction('etcd', () => etcdHarness({ endpoint: etcd.endpoint, rootPrefix: uniquePrefix('compact'), compaction: true }));

describe('etcd store on a private etcd', () => {
  test('getPrefix reads 20,000 keys in pages, all at one revision, even while keys change', async () => {
    const root = uniquePrefix('big');
    const store = storeOn(etcd.endpoint, root);
    const small = storeOn(etcd.endpoint, root, { pageSize: 2_000 });
    try {
      const value = 'x'.repeat(200);
      const keys = Array.from({ length: 20_000 }, (_, i) => `registry/m-${String(i).padStart(5, '0')}`);
      const batches: TxnOp[][] = [];
      for (let i = 0; i < keys.length; i += 100) batches.push(keys.slice(i, i + 100).map((key) => ({ key, expectedModRevision: 0, value })));
      for (let i = 0; i < batches.length; i += 10) {
        const results = await Promise.all(batches.slice(i, i + 10).map((ops) => store.transact(ops)));
        expect(results.every((r) => r.succeeded)).toBe(true);
      }

      const all = await store.getPrefix('registry/');
      expect(all.entries).toHaveLength(20_000);
      expect(all.entries.map((e) => e.key)).toEqual(keys);

      // Delete keys while a 10-page read runs: each deletion shows in the snapshot exactly when it came after it.
      const deletions: { key: string; revision: number }[] = [];
      const deleting = (async () => {
        for (let i = 0; i < 20_000; i += 400) {
          const key = keys[i];
          await store.delete(key);
          deletions.push({ key, revision: (await store.getPrefix('nothing-here/')).revision });
        }
      })();
      const snapshot = await small.getPrefix('registry/');
      await deleting;
      const present = new Set(snapshot.entries.map((e) => e.key));
      for (const { key, revision } of deletions) {
        // `revision` is at or after the delete; a delete at or before the snapshot's revision must be absent.
        if (revision <= snapshot.revision) expect(present.has(key)).toBe(false);
      }
      const deletedBefore = deletions.filter((d) => !present.has(d.key)).length;
      expect(snapshot.entries.length).toBe(20_000 - deletedBefore);
      expect(snapshot.entries.every((e) => e.modRevision <= snapshot.revision)).toBe(true);
    } finally {
      await small.close();
      await store.close();
    }
  });

  test('a mirror cut off while history is compacted resyncs and reports exactly the differences', async () => {
    const proxy = await TcpProxy.start(etcd.clientPort);
    const root = uniquePrefix('partition');
    const direct = storeOn(etcd.endpoint, root);
    const cutOff = storeOn(proxy.endpoint, root, { requestTimeoutMs: 2_000 });
    const admin = new Etcd3({ hosts: etcd.endpoint });
    const errors: Error[] = [];
    const mirror = new KvMirror(cutOff, 'r/', { retryDelayMs: 200, onError: (err) => errors.push(err) });
    try {
      for (let i = 0; i < 5; i++) await direct.put(`r/${i}`, 'a');
      await mirror.ready;
      await waitFor('initial entries', () => mirror.entries.size === 5);
      const changes: string[] = [];
      mirror.onChange((key, entry, previous) => changes.push(`${key}: ${previous?.value ?? '-'} -> ${entry?.value ?? '-'}`));

      proxy.partition();
      await direct.put('r/0', 'b');
      await direct.delete('r/1');
      await direct.put('r/new', 'c');
      await direct.put('r/2', 'x');
      await direct.delete('r/2');
      const { header } = await admin.kv.range({ key: Buffer.from('\0') });
      await admin.kv.compact({ revision: header.revision, physical: true });
      proxy.heal();

      await waitFor('mirror to converge', () => mirror.get('r/new')?.value === 'c' && !mirror.get('r/2') && !mirror.get('r/1'), { timeoutMs: 20_000 });
      expect(changes.sort()).toEqual(['r/0: a -> b', 'r/1: a -> -', 'r/2: a -> -', 'r/new: - -> c']);
      expect(errors.some((e) => e instanceof KvResyncNeededError)).toBe(true);
      await direct.put('r/3', 'live');
      await waitFor('live write after the resync', () => mirror.get('r/3')?.value === 'live', { timeoutMs: 10_000 });
    } finally {
      await mirror.close();
      await cutOff.close();
      await direct.close();
      admin.close();
      await proxy.stop();
    }
  });

  // Stops the server: keep this test last.
  test('with etcd down, every call fails with UNAVAILABLE naming the endpoint within the timeout; a lease is reported lost', async () => {
    const store = storeOn(etcd.endpoint, uniquePrefix('down'), { requestTimeoutMs: 1_000 });
    const lease = await store.grantLease(2);
    const lost = new Promise<Error>((resolve) => lease.onLost(resolve));
    const rev = await store.put('k', 'v', { lease });
    const mirror = new KvMirror(store, '');
    await mirror.ready;

    await etcd.stop();
    const started = Date.now();
    const results = await Promise.allSettled([
      store.get('k'),
      store.getPrefix(''),
      store.put('k', 'v2'),
      store.putIfModRevision('k', 'v3', rev),
      store.transact([{ key: 'k', expectedModRevision: rev }]),
      store.watchPrefix('', 0, { onEvents: () => undefined }),
      store.grantLease(5),
    ]);
    const elapsed = Date.now() - started;
    for (const result of results) {
      expect(result.status).toBe('rejected');
      const reason = (result as PromiseRejectedResult).reason as MeshError;
      expect(reason).toBeInstanceOf(MeshError);
      expect(reason).toMatchObject({ code: status.UNAVAILABLE, retryable: true });
      expect(reason.message).toContain(etcd.endpoint);
    }
    expect(elapsed).toBeLessThan(3_000);

    const err = await lost;
    expect(err).toBeInstanceOf(MeshError);
    expect(Date.now() - started).toBeLessThan(6_000);

    // Closing with etcd still down must not hang (watches and keep-alives are torn down locally).
    await mirror.close();
    await store.close();
  });
});
