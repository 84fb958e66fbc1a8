import { status } from '@grpc/grpc-js';
import { StoreHarness } from './harnesses';
import { MeshError } from '../../../runtime/src/errors';
import {
  KvEntry, KvEvent, KvLeaseNotFoundError, KvMirror, KvResyncNeededError, KvStore, LeaderElection, Watch,
} from '../../../runtime/src/kv';
import { waitFor } from '../../harness/wait';

/**
 * The behavioural contract of a KvStore, run against every implementation. Each test gets fresh service names, so
 * tests never see each other's keys even on a shared etcd.
 */

interface Recorder {
  readonly events: KvEvent[];
  readonly resyncs: Error[];
  readonly watch: Watch;
}

/** Per-test resources, released in reverse order after each test. */
class Scope {
  private readonly cleanups: (() => Promise<void>)[] = [];
  private serial = 0;

  constructor(private readonly getHarness: () => StoreHarness) {}

  get harness(): StoreHarness {
    return this.getHarness();
  }

  open(name = 'svc'): KvStore {
    const store = this.harness.open(`${name}-${this.serial++}-${process.pid}`);
    this.defer(() => store.close());
    return store;
  }

  /** Two clients on one namespace (two processes of one mesh). */
  openPair(): [KvStore, KvStore] {
    const name = `pair-${this.serial++}-${process.pid}`;
    const a = this.harness.open(name);
    const b = this.harness.open(name);
    this.defer(() => a.close());
    this.defer(() => b.close());
    return [a, b];
  }

  async record(store: KvStore, prefix: string, fromRevision: number): Promise<Recorder> {
    const events: KvEvent[] = [];
    const resyncs: Error[] = [];
    const watch = await store.watchPrefix(prefix, fromRevision, {
      onEvents: (batch) => events.push(...batch),
      onResyncNeeded: (err) => resyncs.push(err),
    });
    this.defer(() => watch.cancel());
    return { events, resyncs, watch };
  }

  mirror(store: KvStore, prefix: string, keepEntries = true): KvMirror {
    const mirror = new KvMirror(store, prefix, { retryDelayMs: 200, keepEntries });
    this.defer(() => mirror.close());
    return mirror;
  }

  election(store: KvStore, id: string): LeaderElection {
    const election = new LeaderElection(store, id, { ttlSeconds: 5, retryDelayMs: 200 });
    this.defer(() => election.resign().catch(() => undefined));
    return election;
  }

  defer(cleanup: () => Promise<unknown>): void {
    this.cleanups.push(async () => { await cleanup(); });
  }

  async release(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup();
  }
}

/** Deletes carry no revision here: `delete()` does not return one to compare with. */
const describeEvent = (ev: KvEvent) => (ev.type === 'put' ? `put ${ev.entry.key}=${ev.entry.value}@${ev.entry.modRevision}` : `delete ${ev.key}`);
const revisionOf = (ev: KvEvent) => (ev.type === 'put' ? ev.entry.modRevision : ev.modRevision);

function useHarness(makeHarness: () => StoreHarness | Promise<StoreHarness>): Scope {
  let harness: StoreHarness | undefined;
  const scope = new Scope(() => {
    if (!harness) throw new Error('harness not ready');
    return harness;
  });
  beforeAll(async () => { harness = await makeHarness(); });
  afterEach(() => scope.release());
  afterAll(async () => { await harness?.dispose(); });
  return scope;
}

/** The common contract: reads, writes, CAS, transactions, namespaces, watches, leases, mirror, election. */
export function describeKvStoreBehaviour(name: string, makeHarness: () => StoreHarness | Promise<StoreHarness>): void {
  describe(`${name}: KvStore behaviour`, () => {
    const scope = useHarness(makeHarness);

    test('get, put and delete', async () => {
      const store = scope.open();
      expect(await store.get('a')).toBeUndefined();
      const r1 = await store.put('a', 'one');
      expect(await store.get('a')).toEqual({ key: 'a', value: 'one', modRevision: r1 });
      const r2 = await store.put('a', 'two ✓');
      expect(r2).toBeGreaterThan(r1);
      expect(await store.get('a')).toEqual({ key: 'a', value: 'two ✓', modRevision: r2 });
      expect(await store.delete('a')).toBe(true);
      expect(await store.delete('a')).toBe(false);
      expect(await store.get('a')).toBeUndefined();
    });

    test('compare-and-set on the mod revision: success, conflict with the current entry, create-only', async () => {
      const store = scope.open();
      const created = await store.putIfModRevision('k', 'v1', 0);
      expect(created.succeeded).toBe(true);
      expect(created.entry).toMatchObject({ key: 'k', value: 'v1' });
      const rev1 = created.entry!.modRevision;

      const again = await store.putIfModRevision('k', 'other', 0);
      expect(again).toEqual({ succeeded: false, entry: { key: 'k', value: 'v1', modRevision: rev1 } });

      const updated = await store.putIfModRevision('k', 'v2', rev1);
      expect(updated.succeeded).toBe(true);
      const rev2 = updated.entry!.modRevision;
      expect(rev2).toBeGreaterThan(rev1);
      expect(await store.get('k')).toEqual({ key: 'k', value: 'v2', modRevision: rev2 });

      const stale = await store.putIfModRevision('k', 'v3', rev1);
      expect(stale).toEqual({ succeeded: false, entry: { key: 'k', value: 'v2', modRevision: rev2 } });
      expect((await store.putIfModRevision('absent', 'x', rev2)).succeeded).toBe(false);

      const staleDelete = await store.deleteIfModRevision('k', rev1);
      expect(staleDelete).toEqual({ succeeded: false, entry: { key: 'k', value: 'v2', modRevision: rev2 } });
      expect(await store.deleteIfModRevision('k', rev2)).toEqual({ succeeded: true });
      expect(await store.get('k')).toBeUndefined();
      await expect(store.putIfModRevision('k', 'x', -1)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    });

    test('transactions apply every op or none, at one revision', async () => {
      const store = scope.open();
      const ra = await store.put('a', '1');
      const rb = await store.put('b', '1');

      const refused = await store.transact([
        { key: 'a', expectedModRevision: ra, value: '2' },
        { key: 'b', expectedModRevision: rb + 1000, value: '2' },
        { key: 'c', expectedModRevision: 0, value: 'new' },
      ]);
      expect(refused.succeeded).toBe(false);
      expect((await store.get('a'))!.value).toBe('1');
      expect(await store.get('c')).toBeUndefined();

      const applied = await store.transact([
        { key: 'a', expectedModRevision: ra, value: '2' },
        { key: 'b', expectedModRevision: rb },
        { key: 'c', expectedModRevision: 0, value: 'new' },
      ]);
      expect(applied.succeeded).toBe(true);
      const a = await store.get('a');
      const c = await store.get('c');
      expect(a!.value).toBe('2');
      expect(await store.get('b')).toBeUndefined();
      expect(c!.modRevision).toBe(a!.modRevision);
      expect(applied).toEqual({ succeeded: true, revision: a!.modRevision });

      await expect(store.transact([
        { key: 'x', expectedModRevision: 0, value: '1' },
        { key: 'x', expectedModRevision: 0, value: '2' },
      ])).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    });

    test('namespaces are isolated and prefixes are exact', async () => {
      const one = scope.open('one');
      const two = scope.open('two');
      expect(one.description).not.toEqual(two.description);
      const twoEvents = await scope.record(two, '', 0);
      await one.put('registry/m1', 'x');
      await one.put('registry-other', 'y');
      await two.put('registry/m2', 'z');

      expect(await two.get('registry/m1')).toBeUndefined();
      expect((await one.getPrefix('registry/')).entries.map((e) => e.key)).toEqual(['registry/m1']);
      expect((await two.getPrefix('')).entries.map((e) => e.key)).toEqual(['registry/m2']);
      await waitFor('two sees its own put', () => twoEvents.events.length >= 1);
      await one.put('registry/m3', 'after');
      await two.put('marker', '1');
      await waitFor('marker', () => twoEvents.events.length >= 2);
      expect(twoEvents.events.map((e) => (e.type === 'put' ? e.entry.key : e.key))).toEqual(['registry/m2', 'marker']);
    });

    test('getPrefix returns every key in key order with the revision it was read at', async () => {
      const store = scope.open();
      const keys = Array.from({ length: 25 }, (_, i) => `p/${String(i).padStart(2, '0')}`).reverse();
      for (const key of keys) await store.put(key, key.toUpperCase());
      const last = await store.put('q/outside', '1');
      const snapshot = await store.getPrefix('p/');
      expect(snapshot.entries.map((e) => e.key)).toEqual([...keys].sort());
      expect(snapshot.entries[0]).toMatchObject({ key: 'p/00', value: 'P/00' });
      expect(snapshot.revision).toBeGreaterThanOrEqual(last);
    });

    test('a watch delivers events in revision order and replays from a past revision', async () => {
      const store = scope.open();
      const expected: string[] = [];
      const first = await store.put('w/a', '1');
      expected.push(`put w/a=1@${first}`);
      const live = await scope.record(store, 'w/', first + 1);
      for (let i = 0; i < 20; i++) {
        const key = `w/${i % 3}`;
        if (i % 4 === 3) {
          // A delete of a missing key writes nothing and so yields no event.
          if (await store.delete(key)) expected.push(`delete ${key}`);
        } else {
          const rev = await store.put(key, `v${i}`);
          expected.push(`put ${key}=v${i}@${rev}`);
        }
      }
      await store.put('x/not-watched', '1');
      await waitFor('all live events', () => live.events.length >= expected.length - 1);
      expect(live.events.map(describeEvent)).toEqual(expected.slice(1));
      const revisions = live.events.map(revisionOf);
      expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
      expect(new Set(revisions).size).toBe(revisions.length);

      // From the first revision: the same history again, then live events after it.
      const replay = await scope.record(store, 'w/', first);
      await waitFor('replayed events', () => replay.events.length >= expected.length);
      expect(replay.events.map(describeEvent)).toEqual(expected);
      const more = await store.put('w/later', 'x');
      await waitFor('live event after replay', () => replay.events.length === expected.length + 1);
      expect(describeEvent(replay.events[expected.length])).toBe(`put w/later=x@${more}`);
      expect(replay.resyncs).toEqual([]);
    });

    test('concurrent writers: a watch sees every write once, in nondecreasing revision order', async () => {
      const [a, b] = scope.openPair();
      const rec = await scope.record(b, 'c/', 0);
      const revisions = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).put(`c/${i}`, String(i))));
      await waitFor('200 events', () => rec.events.length >= 200);
      const seen = rec.events.map(revisionOf);
      expect(seen).toEqual([...revisions].sort((x, y) => x - y));
    });

    test('a watch "from now" (revision 0) sees only later writes', async () => {
      const store = scope.open();
      await store.put('n/old', '1');
      const rec = await scope.record(store, 'n/', 0);
      await store.put('n/new', '2');
      await waitFor('new event', () => rec.events.length >= 1);
      expect(rec.events.map(describeEvent)).toEqual([expect.stringMatching(/^put n\/new=2@/)]);
    });

    test('a cancelled watch delivers nothing more', async () => {
      const store = scope.open();
      const rec = await scope.record(store, 'z/', 0);
      await store.put('z/1', 'a');
      await waitFor('first', () => rec.events.length === 1);
      await rec.watch.cancel();
      await rec.watch.cancel();
      await store.put('z/2', 'b');
      const check = await scope.record(store, 'z/', 0);
      await store.put('z/3', 'c');
      await waitFor('fence', () => check.events.length === 1);
      expect(rec.events).toHaveLength(1);
    });

    test('keys bound to a lease are deleted, with a watch event, when the lease expires unrenewed', async () => {
      const [owner, observer] = scope.openPair();
      const lease = await owner.grantLease(1);
      await owner.put('inst/me', 'alive', { lease });
      expect(await observer.get('inst/me')).toEqual({ key: 'inst/me', value: 'alive', modRevision: expect.any(Number), lease: lease.id });
      const rec = await scope.record(observer, 'inst/', 0);
      // Closing the owner stops its keep-alives (a crashed process); the lease then runs out.
      await owner.close();
      await waitFor('delete event', () => rec.events.length > 0, { timeoutMs: 10_000 });
      expect(rec.events).toEqual([{ type: 'delete', key: 'inst/me', modRevision: expect.any(Number) }]);
      expect(await observer.get('inst/me')).toBeUndefined();
    });

    test('a lease outlives its TTL while the store keeps it alive', async () => {
      const store = scope.open();
      const lease = await store.grantLease(1);
      const lost: Error[] = [];
      lease.onLost((err) => lost.push(err));
      await store.put('alive', 'yes', { lease });
      const started = Date.now();
      // Three TTLs (etcd rounds a 1 s TTL up to its minimum, about 2 s): still there, never reported lost.
      await waitFor('three TTLs', () => Date.now() - started > 3_000, { timeoutMs: 5_000, intervalMs: 250 });
      expect((await store.get('alive'))?.value).toBe('yes');
      expect(lost).toEqual([]);
      await lease.revoke();
    });

    test('revoking a lease deletes its keys; writing with it afterwards fails with a typed error', async () => {
      const store = scope.open();
      const lease = await store.grantLease(30);
      await store.put('l/a', '1', { lease });
      await store.putIfModRevision('l/b', '2', 0, { lease });
      await store.put('l/c', 'unleased');
      const rec = await scope.record(store, 'l/', 0);
      await lease.revoke();
      await waitFor('two deletes', () => rec.events.length >= 2);
      expect(rec.events.map((e) => e.type)).toEqual(['delete', 'delete']);
      const deleteRevisions = rec.events.map((e) => (e.type === 'delete' ? e.modRevision : 0));
      expect(deleteRevisions[0]).toBe(deleteRevisions[1]);
      expect((await store.getPrefix('l/')).entries.map((e) => e.key)).toEqual(['l/c']);
      const err = await store.put('l/d', 'x', { lease }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KvLeaseNotFoundError);
      expect(err).toMatchObject({ code: status.FAILED_PRECONDITION });
      await expect(store.grantLease(0)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    });

    test('a lease revoked elsewhere is reported lost to its owner', async () => {
      const store = scope.open();
      const lease = await store.grantLease(3);
      await store.put('mine', '1', { lease });
      const lost = new Promise<Error>((resolve) => lease.onLost(resolve));
      await scope.harness.revokeLeaseElsewhere(lease.id);
      const err = await lost;
      expect(err).toBeInstanceOf(MeshError);
      expect(await store.get('mine')).toBeUndefined();
      // A listener added after the loss still hears of it.
      await expect(new Promise<Error>((resolve) => lease.onLost(resolve))).resolves.toBe(err);
    });

    test('a closed store refuses calls', async () => {
      const store = scope.harness.open('closed');
      await store.close();
      await expect(store.get('x')).rejects.toMatchObject({ code: status.FAILED_PRECONDITION, message: expect.stringContaining('closed') });
    });

    test('a mirror loads, follows many writes, and tells listeners what changed', async () => {
      const [writer, reader] = scope.openPair();
      for (let i = 0; i < 30; i++) await writer.put(`m/${i}`, `init-${i}`);
      await writer.put('other/x', 'outside');
      const mirror = scope.mirror(reader, 'm/');
      // A replica built only from listener calls must end up equal to the mirror.
      const replica = new Map<string, KvEntry>();
      const problems: string[] = [];
      mirror.onChange((key, entry, previous) => {
        if (replica.get(key) !== previous) problems.push(`previous of ${key} does not match`);
        if (entry) replica.set(key, entry); else replica.delete(key);
      });
      await mirror.ready;
      expect(mirror.entries.size).toBe(30);
      expect(mirror.get('m/7')?.value).toBe('init-7');

      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 600; i++) {
        const key = `m/${i % 90}`;
        ops.push(i % 5 === 4 ? writer.delete(key) : writer.put(key, `v${i}`));
        if (ops.length === 50) await Promise.all(ops.splice(0));
      }
      await Promise.all(ops);
      const truth = await writer.getPrefix('m/');
      // Compare contents, not revisions: other tests write to the shared etcd and move its revision.
      const expected = new Map(truth.entries.map((e) => [e.key, e.modRevision]));
      await waitFor('mirror to converge', () => mirror.entries.size === expected.size
        && [...mirror.entries.values()].every((e) => expected.get(e.key) === e.modRevision));
      expect(new Map([...mirror.entries].map(([k, e]) => [k, e.value]))).toEqual(new Map(truth.entries.map((e) => [e.key, e.value])));
      expect([...mirror.entries.values()].every((e) => truth.entries.some((t) => t.key === e.key && t.modRevision === e.modRevision))).toBe(true);
      expect(replica).toEqual(new Map(mirror.entries));
      expect(problems).toEqual([]);
    });

    test('a mirror keeping revisions only tells listeners the same changes and holds no entries', async () => {
      const [writer, reader] = scope.openPair();
      for (let i = 0; i < 10; i++) await writer.put(`r/${i}`, `init-${i}`);
      const mirror = scope.mirror(reader, 'r/', false);
      const replica = new Map<string, string>();
      const previousGiven: string[] = [];
      mirror.onChange((key, entry, previous) => {
        if (previous) previousGiven.push(key);
        if (entry) replica.set(key, entry.value); else replica.delete(key);
      });
      await mirror.ready;
      expect(replica.size).toBe(10);
      for (let i = 0; i < 40; i++) await (i % 4 === 3 ? writer.delete(`r/${i % 15}`) : writer.put(`r/${i % 15}`, `v${i}`));
      const truth = new Map((await writer.getPrefix('r/')).entries.map((e) => [e.key, e.value]));
      await waitFor('mirror listeners to converge', () => replica.size === truth.size && [...truth].every(([k, v]) => replica.get(k) === v));
      expect(mirror.entries.size).toBe(0);
      expect(mirror.get('r/1')).toBeUndefined();
      expect(previousGiven).toEqual([]);
    });

    test('election: exactly one leader among three candidates, and all agree who it is', async () => {
      const store = scope.open();
      const candidates = ['a', 'b', 'c'].map((id) => scope.election(store, id));
      const gained: string[] = [];
      for (const c of candidates) c.onGained(() => gained.push(c.candidateId));
      await Promise.all(candidates.map((c) => c.start()));
      const leader = await waitFor('one leader known to all', () => {
        const leaders = candidates.filter((c) => c.isLeader);
        return leaders.length === 1 && candidates.every((c) => c.leaderId === leaders[0].candidateId) ? leaders[0] : undefined;
      });
      expect(gained).toEqual([leader.candidateId]);
      expect((await store.get('leader'))?.value).toBe(leader.candidateId);
    });

    test('election: when the leader\'s lease is revoked, it loses leadership and one other candidate takes over', async () => {
      const store = scope.open();
      const candidates = ['a', 'b', 'c'].map((id) => scope.election(store, id));
      await Promise.all(candidates.map((c) => c.start()));
      const oldLeader = await waitFor('a leader', () => candidates.find((c) => c.isLeader));
      const oldLease = oldLeader.leaseId!;
      const lost = new Promise<Error>((resolve) => oldLeader.onLost(resolve));

      await scope.harness.revokeLeaseElsewhere(oldLease);
      await lost;
      const next = await waitFor('a new leader under a new lease, known to all', () => {
        const leaders = candidates.filter((c) => c.isLeader);
        return leaders.length === 1 && leaders[0].leaseId !== oldLease && candidates.every((c) => c.leaderId === leaders[0].candidateId)
          ? leaders[0] : undefined;
      }, { timeoutMs: 15_000 });
      expect((await store.get('leader'))).toMatchObject({ value: next.candidateId, lease: next.leaseId });
    });

    test('election: a resigning leader hands over to another candidate', async () => {
      const store = scope.open();
      const candidates = ['a', 'b'].map((id) => scope.election(store, id));
      await Promise.all(candidates.map((c) => c.start()));
      const first = await waitFor('a leader', () => candidates.find((c) => c.isLeader));
      const other = candidates.find((c) => c !== first)!;
      const lost: string[] = [];
      first.onLost((reason) => lost.push(reason.message));
      await first.resign();
      expect(first.isLeader).toBe(false);
      expect(lost).toEqual([expect.stringContaining('resigned')]);
      await waitFor('the other leads', () => other.isLeader && other.leaderId === other.candidateId);

      // A resigned candidate may join again: it follows the current leader.
      await first.start();
      expect(first.isLeader).toBe(false);
      expect(first.leaderId).toBe(other.candidateId);
    });
  });
}

/** Compaction: needs a server no other test file shares. */
export function describeCompaction(name: string, makeHarness: () => StoreHarness | Promise<StoreHarness>): void {
  describe(`${name}: history compaction`, () => {
    const scope = useHarness(makeHarness);

    test('a watch from a compacted revision asks for a resync; a watch from after it replays normally', async () => {
      const store = scope.open();
      const old = await store.put('h/a', '1');
      await store.put('h/a', '2');
      const after = await store.put('h/b', '3');
      await scope.harness.compact!();
      const rec = await scope.record(store, 'h/', old);
      await waitFor('resync request', () => rec.resyncs.length === 1);
      expect(rec.resyncs[0]).toBeInstanceOf(KvResyncNeededError);
      expect(rec.events).toEqual([]);

      const fresh = await scope.record(store, 'h/', after + 1);
      await store.put('h/c', '4');
      await waitFor('fresh event', () => fresh.events.length === 1);
      expect(fresh.resyncs).toEqual([]);
    });
  });
}
