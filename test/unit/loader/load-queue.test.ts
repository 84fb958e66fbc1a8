import { LoadQueue, LoadQueueClosedError } from '../../../runtime/src/loader';

/** A task that finishes when the test says so. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  return { open, opened };
}

describe('LoadQueue', () => {
  test('never runs more than the concurrency limit at once', async () => {
    const queue = new LoadQueue(2);
    const gates = [gate(), gate(), gate()];
    const started: number[] = [];
    const results = gates.map((g, i) => queue.run('background', async () => { started.push(i); await g.opened; return i; }));
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    expect([queue.inFlight, queue.queued]).toEqual([2, 1]);
    gates[0].open();
    await results[0];
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1, 2]);
    gates[1].open();
    gates[2].open();
    expect(await Promise.all(results)).toEqual([0, 1, 2]);
    expect(queue.inFlight).toBe(0);
  });

  test('a load a request waits for runs before queued background loads', async () => {
    const queue = new LoadQueue(1);
    const blocker = gate();
    const order: string[] = [];
    const first = queue.run('background', async () => { await blocker.opened; order.push('first'); });
    const background = queue.run('background', async () => { order.push('background'); });
    const request = queue.run('request', async () => { order.push('request'); });
    blocker.open();
    await Promise.all([first, background, request]);
    expect(order).toEqual(['first', 'request', 'background']);
  });

  test('a failing task rejects its caller and frees its slot', async () => {
    const queue = new LoadQueue(1);
    await expect(queue.run('request', async () => { throw new Error('runtime said no'); })).rejects.toThrow('runtime said no');
    await expect(queue.run('request', async () => 'next')).resolves.toBe('next');
  });

  test('close rejects queued tasks and new ones, and lets running ones finish', async () => {
    const queue = new LoadQueue(1);
    const blocker = gate();
    const running = queue.run('request', async () => { await blocker.opened; return 'done'; });
    const queued = queue.run('background', async () => 'never');
    queue.close('instance is leaving');
    await expect(queued).rejects.toThrow(LoadQueueClosedError);
    await expect(queue.run('request', async () => 'late')).rejects.toThrow('instance is leaving');
    blocker.open();
    await expect(running).resolves.toBe('done');
  });
});
