import { LruCache } from '../../../runtime/src/cache';

describe('LruCache', () => {
  test('tracks used bytes through reserve, load with measured size, resize and remove', () => {
    const cache = new LruCache(100);
    cache.addLoading('a', 30, 1);
    expect(cache.used).toBe(30);
    cache.markLoaded('a', 20, 2);
    expect(cache.used).toBe(20);
    cache.resize('a', 25);
    expect([cache.used, cache.free]).toEqual([25, 75]);
    cache.remove('a');
    expect([cache.used, cache.size]).toEqual([0, 0]);
  });

  test('adding a copy twice keeps one reservation', () => {
    const cache = new LruCache(100);
    cache.addLoading('a', 30, 1);
    cache.addLoading('a', 30, 2);
    expect(cache.used).toBe(30);
  });

  test('eviction takes least recently used idle loaded copies first, and only as many as needed', () => {
    const cache = new LruCache(100);
    for (const [id, t] of [['a', 1], ['b', 2], ['c', 3], ['d', 4]] as const) {
      cache.addLoading(id, 25, t);
      cache.markLoaded(id, 25, t);
    }
    cache.touch('a', 10);
    const plan = cache.planEviction(40);
    expect(plan.victims.map((c) => c.modelId)).toEqual(['b', 'c']);
    expect(plan.sufficient).toBe(true);
  });

  test('busy, loading and kept copies are never evicted', () => {
    const cache = new LruCache(100);
    cache.addLoading('loading', 25, 1);
    cache.addLoading('busy', 25, 2);
    cache.markLoaded('busy', 25, 2);
    cache.get('busy')!.inFlight = 1;
    cache.addLoading('kept', 25, 3);
    cache.markLoaded('kept', 25, 3);
    cache.addLoading('idle', 25, 4);
    cache.markLoaded('idle', 25, 4);
    const plan = cache.planEviction(60, new Set(['kept']));
    expect(plan.victims.map((c) => c.modelId)).toEqual(['idle']);
    expect(plan.sufficient).toBe(false);
  });

  test('lru time is the last use of the least recently used loaded copy', () => {
    const cache = new LruCache(100);
    expect(cache.lruTime()).toBe(0);
    cache.addLoading('a', 10, 5);
    expect(cache.lruTime()).toBe(0);
    cache.markLoaded('a', 10, 5);
    cache.addLoading('b', 10, 7);
    cache.markLoaded('b', 10, 7);
    expect(cache.lruTime()).toBe(5);
    cache.touch('a', 9);
    expect(cache.lruTime()).toBe(7);
  });

  test('copies used since a time come most recent first', () => {
    const cache = new LruCache(100);
    for (const [id, t] of [['old', 1], ['mid', 5], ['new', 9]] as const) {
      cache.addLoading(id, 10, t);
      cache.markLoaded(id, 10, t);
    }
    expect(cache.usedSince(5).map((c) => c.modelId)).toEqual(['new', 'mid']);
  });
});

describe('LruCache eviction preference', () => {
  test('preferred copies (loaded elsewhere too) go before the least recently used last copies', () => {
    const cache = new LruCache(100);
    for (const [id, t] of [['only-old', 1], ['extra-new', 2], ['only-new', 3]] as const) {
      cache.addLoading(id, 30, t);
      cache.markLoaded(id, 30, t);
    }
    const plan = cache.planEviction(30, new Set(), (copy) => copy.modelId === 'extra-new');
    expect(plan.victims.map((c) => c.modelId)).toEqual(['extra-new']);
    expect(cache.planEviction(60, new Set(), (copy) => copy.modelId === 'extra-new').victims.map((c) => c.modelId)).toEqual(['extra-new', 'only-old']);
  });
});
