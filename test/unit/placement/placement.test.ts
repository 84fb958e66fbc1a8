import {
  LoadPlacementRequest, NO_CONSTRAINTS, PlacementInstance, chooseLoadTarget, chooseServingCopy, copiesToAdd, isFull,
  parseTypeConstraints,
} from '../../../runtime/src/placement';

const MiB = 1024 * 1024;

function instance(id: string, overrides: Partial<PlacementInstance> = {}): PlacementInstance {
  const defaults = { capacity: 100 * MiB, used: 0, lruTime: 0, loadsInFlight: 0, rpm: 0, labels: [], shuttingDown: false, defaultModelSize: MiB };
  return { id, ...defaults, ...overrides };
}

function request(overrides: Partial<LoadPlacementRequest> = {}): LoadPlacementRequest {
  return { modelId: 'm', modelType: 'example', size: MiB, holders: new Set(), failedIn: new Set(), preferLocal: false, ...overrides };
}

/** A deterministic random source cycling through the given values. */
const sequence = (...values: number[]) => { let i = 0; return () => values[i++ % values.length]; };

const chosenId = (placement: ReturnType<typeof chooseLoadTarget>) => (placement.kind === 'chosen' ? placement.instanceId : placement.reason);

describe('chooseLoadTarget', () => {
  test('excludes leaving instances, holders, recent failures and explicit exclusions', () => {
    const instances = [instance('a', { shuttingDown: true }), instance('b'), instance('c'), instance('d'), instance('e')];
    const placement = chooseLoadTarget(request({ holders: new Set(['b']), failedIn: new Set(['c']), excluded: new Set(['d']) }), instances, NO_CONSTRAINTS);
    expect(chosenId(placement)).toBe('e');
  });

  test('when nothing is eligible the reason counts why each instance was left out', () => {
    const placement = chooseLoadTarget(request({ failedIn: new Set(['b']) }), [instance('a', { shuttingDown: true }), instance('b')], NO_CONSTRAINTS);
    expect(placement).toEqual({ kind: 'none', reason: 'no instance can load model m: 2 instance(s), excluded: 1 leaving, 1 failed' });
  });

  test('required labels of the model type filter instances, and the reason names them', () => {
    const constraints = parseTypeConstraints(JSON.stringify({ 'mt:onnx': { required: ['mt:onnx'] }, '_default': { required: ['_no_runtime'] } }));
    const instances = [instance('a', { labels: ['mt:sklearn'] }), instance('b', { labels: ['mt:onnx', 'rt:x'] })];
    expect(chosenId(chooseLoadTarget(request({ modelType: 'mt:onnx' }), instances, constraints))).toBe('b');
    expect(chooseLoadTarget(request({ modelType: 'mt:other' }), instances, constraints)).toEqual({
      kind: 'none', reason: 'no instance can load model m: 2 instance(s), excluded: 2 labels (type mt:other requires labels _no_runtime)',
    });
  });

  test('preferred labels narrow the choice when some instance has them', () => {
    const constraints = parseTypeConstraints('{"example": {"preferred": ["zone:a"]}}');
    const instances = [instance('a', { used: 0 }), instance('b', { labels: ['zone:a'], used: 10 * MiB })];
    expect(chosenId(chooseLoadTarget(request(), instances, constraints, sequence(0)))).toBe('b');
  });

  test('prefers free space: an instance far below the best free space is not chosen', () => {
    const instances = [instance('full-ish', { used: 90 * MiB }), instance('empty')];
    for (const r of [0, 0.5, 0.99]) expect(chosenId(chooseLoadTarget(request(), instances, NO_CONSTRAINTS, sequence(r)))).toBe('empty');
  });

  test('among near-best free space, fewest loads in flight then lowest rate win', () => {
    const instances = [instance('a', { used: 5 * MiB, loadsInFlight: 2 }), instance('b', { used: 10 * MiB, rpm: 50 }), instance('c', { used: 10 * MiB, rpm: 10 })];
    expect(chosenId(chooseLoadTarget(request(), instances, NO_CONSTRAINTS))).toBe('c');
  });

  test('the local instance wins ties only when preferred', () => {
    const instances = [instance('a'), instance('b'), instance('c')];
    expect(chosenId(chooseLoadTarget(request({ localId: 'c', preferLocal: true }), instances, NO_CONSTRAINTS, sequence(0)))).toBe('c');
    expect(chosenId(chooseLoadTarget(request({ localId: 'c', preferLocal: false }), instances, NO_CONSTRAINTS, sequence(0)))).toBe('a');
  });

  test('a preferred local instance wins over less busy ones by rate, not by free space or loads in flight', () => {
    const busyHere = [instance('a', { rpm: 0 }), instance('here', { rpm: 5_000, used: 10 * MiB })];
    const placement = chooseLoadTarget(request({ localId: 'here', preferLocal: true }), busyHere, NO_CONSTRAINTS, sequence(0));
    expect(chosenId(placement)).toBe('here');
    expect(placement.kind === 'chosen' && placement.reasons.join('; ')).toContain('the local instance, where the call waits');
    expect(chosenId(chooseLoadTarget(request({ localId: 'here', preferLocal: false }), busyHere, NO_CONSTRAINTS, sequence(0)))).toBe('a');
    const loadingHere = [instance('a'), instance('here', { loadsInFlight: 1 })];
    expect(chosenId(chooseLoadTarget(request({ localId: 'here', preferLocal: true }), loadingHere, NO_CONSTRAINTS, sequence(0.99)))).toBe('a');
    const fullHere = [instance('a'), instance('here', { used: 90 * MiB })];
    expect(chosenId(chooseLoadTarget(request({ localId: 'here', preferLocal: true }), fullHere, NO_CONSTRAINTS, sequence(0.99)))).toBe('a');
  });

  test('when no instance has room, the one whose LRU copy is oldest is chosen', () => {
    const instances = [instance('a', { used: 100 * MiB, lruTime: 5_000 }), instance('b', { used: 100 * MiB, lruTime: 1_000 })];
    const placement = chooseLoadTarget(request(), instances, NO_CONSTRAINTS);
    expect(chosenId(placement)).toBe('b');
    expect(placement.kind === 'chosen' && placement.reasons.join('; ')).toContain('least recently used copy is oldest');
  });

  test('a model bigger than every instance cannot be placed', () => {
    expect(chooseLoadTarget(request({ size: 200 * MiB }), [instance('a')], NO_CONSTRAINTS)).toEqual({
      kind: 'none', reason: 'no instance can load model m: 1 instance(s), excluded: 1 tooSmall',
    });
  });

  test('1,000 placements that count their own reservations spread evenly over equal instances', () => {
    const counts = new Map<string, number>();
    const used = new Map<string, number>([['a', 0], ['b', 0], ['c', 0]]);
    let seed = 42;
    const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    for (let n = 0; n < 1000; n++) {
      const snapshot = [...used].map(([id, u]) => instance(id, { capacity: 2000 * MiB, used: u }));
      const placement = chooseLoadTarget(request({ modelId: `m${n}` }), snapshot, NO_CONSTRAINTS, random);
      if (placement.kind !== 'chosen') throw new Error(placement.reason);
      used.set(placement.instanceId, (used.get(placement.instanceId) ?? 0) + MiB);
      counts.set(placement.instanceId, (counts.get(placement.instanceId) ?? 0) + 1);
    }
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(400);
  });
});

describe('isFull', () => {
  test('full when less than one default-sized model fits', () => {
    expect(isFull(instance('a', { used: 99.5 * MiB }))).toBe(true);
    expect(isFull(instance('a', { used: 99 * MiB }))).toBe(false);
  });
});

describe('chooseServingCopy', () => {
  test('a local copy wins, else the copy with fewest requests in flight', () => {
    const copies = [{ instanceId: 'a', inFlight: 3 }, { instanceId: 'b', inFlight: 1 }, { instanceId: 'c', inFlight: 5 }];
    expect(chooseServingCopy(copies, 'c')?.instanceId).toBe('c');
    expect(chooseServingCopy(copies, 'z')?.instanceId).toBe('b');
    expect(chooseServingCopy([], 'a')).toBeUndefined();
  });
});

describe('copiesToAdd', () => {
  test('adds one copy per full multiple of the per-copy threshold, bounded by candidates', () => {
    expect(copiesToAdd(1_999, 1, 2_000, 5)).toBe(0);
    expect(copiesToAdd(2_000, 1, 2_000, 5)).toBe(1);
    expect(copiesToAdd(9_000, 1, 2_000, 3)).toBe(3);
    expect(copiesToAdd(8_000, 2, 2_000, 5)).toBe(2);
    expect(copiesToAdd(8_000, 0, 2_000, 5)).toBe(0);
  });
});

describe('parseTypeConstraints', () => {
  test('rejects malformed documents with the offending key', () => {
    expect(() => parseTypeConstraints('[')).toThrow(/not valid JSON/);
    expect(() => parseTypeConstraints('{"mt:x": {"required": "mt:x"}}')).toThrow('type constraints: "mt:x".required must be a list of label strings');
  });
});
