import { embeddedHarness } from './harnesses';
import { describeCompaction, describeKvStoreBehaviour } from './store-behaviour';
import {
  EmbeddedBackend, EmbeddedStore, KvMirror, KvResyncNeededError, KvStore, openStore, Watch, WatchHandlers,
} from '../../../runtime/src/kv';
import { waitFor } from '../../harness/wait';

describeKvStoreBehaviour('embedded', () => embeddedHarness());
describeCompaction('embedded', () => embeddedHarness());

/**
 * A real embedded store whose watches the test can break, as a network partition would: `cut()` stops delivery,
 * `resync()` then tells the watcher its history is gone.
 */
class BreakableStore implements KvStore {
  private readonly live: { watch: Watch; handlers: WatchHandlers }[] = [];

  constructor(private readonly inner: KvStore) {}

  get description(): string {
    return this.inner.description;
  }

  async watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    const watch = await this.inner.watchPrefix(prefix, fromRevision, handlers);
    this.live.push({ watch, handlers });
    return watch;
  }

  async cut(): Promise<void> {
    for (const { watch } of this.live) await watch.cancel();
  }

  resync(): void {
    for (const { handlers } of this.live.splice(0)) handlers.onResyncNeeded?.(new KvResyncNeededError('history gone (test)'));
  }

  get: KvStore['get'] = (key) => this.inner.get(key);
  getPrefix: KvStore['getPrefix'] = (prefix) => this.inner.getPrefix(prefix);
  put: KvStore['put'] = (key, value, options) => this.inner.put(key, value, options);
  putIfModRevision: KvStore['putIfModRevision'] = (key, value, rev, options) => this.inner.putIfModRevision(key, value, rev, options);
  delete: KvStore['delete'] = (key) => this.inner.delete(key);
  deleteIfModRevision: KvStore['deleteIfModRevision'] = (key, rev) => this.inner.deleteIfModRevision(key, rev);
  transact: KvStore['transact'] = (ops) => this.inner.transact(ops);
  grantLease: KvStore['grantLease'] = (ttl) => this.inner.grantLease(ttl);
  close: KvStore['close'] = () => this.inner.close();
}

describe('embedded store', () => {
  test('a watch from before the bounded history asks for a resync', async () => {
    const store = new EmbeddedStore({ serviceName: 'svc', backend: new EmbeddedBackend({ historyLimit: 5 }) });
    const first = await store.put('k', '0');
    for (let i = 1; i <= 10; i++) await store.put('k', String(i));
    const resyncs: Error[] = [];
    const watch = await store.watchPrefix('', first, { onEvents: () => undefined, onResyncNeeded: (err) => resyncs.push(err) });
    await waitFor('resync request', () => resyncs.length === 1);
    expect(resyncs[0].message).toMatch(/history at revision \d+ is gone/);

    // The last five revisions are still there.
    const events: number[] = [];
    const recent = await store.watchPrefix('', first + 6, { onEvents: (evs) => events.push(...evs.map((e) => (e.type === 'put' ? e.entry.modRevision : 0))) });
    await waitFor('replay', () => events.length === 5);
    expect(events).toEqual([first + 6, first + 7, first + 8, first + 9, first + 10]);
    await watch.cancel();
    await recent.cancel();
    await store.close();
  });

  test('openStore("embedded") opens an in-process store in the mesh namespace', async () => {
    const backend = new EmbeddedBackend();
    const a = await openStore('embedded', { serviceName: 'modelmesh-serving', embeddedBackend: backend });
    const b = await openStore('embedded', { serviceName: 'modelmesh-serving', kvPrefix: 'other', embeddedBackend: backend });
    expect(a.description).toBe('embedded (single process) prefix /mm/modelmesh-serving/');
    await a.put('x', '1');
    expect(await b.get('x')).toBeUndefined();
    await a.close();
    await b.close();
  });

  test('a mirror whose watch broke re-reads and tells listeners exactly what changed meanwhile', async () => {
    const breakable = new BreakableStore(new EmbeddedStore({ serviceName: 'svc' }));
    for (let i = 0; i < 5; i++) await breakable.put(`r/${i}`, 'a');
    const errors: Error[] = [];
    const mirror = new KvMirror(breakable, 'r/', { onError: (err) => errors.push(err) });
    await mirror.ready;
    const changes: string[] = [];
    mirror.onChange((key, entry, previous) => changes.push(`${key}: ${previous?.value ?? '-'} -> ${entry?.value ?? '-'}`));

    await breakable.cut();
    await breakable.put('r/0', 'b');
    await breakable.delete('r/1');
    await breakable.put('r/new', 'c');
    await breakable.put('r/2', 'x');
    await breakable.delete('r/2');
    expect(mirror.get('r/0')?.value).toBe('a');
    breakable.resync();

    await waitFor('mirror to converge', () => mirror.get('r/new') !== undefined && mirror.get('r/2') === undefined);
    expect(changes.sort()).toEqual(['r/0: a -> b', 'r/1: a -> -', 'r/2: a -> -', 'r/new: - -> c']);
    expect(errors).toEqual([expect.any(KvResyncNeededError)]);

    // And it follows live writes again.
    await breakable.put('r/3', 'live');
    await waitFor('live write', () => mirror.get('r/3')?.value === 'live');
    await mirror.close();
    await breakable.close();
  });
});
