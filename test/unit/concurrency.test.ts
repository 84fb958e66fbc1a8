import { forEachSliced } from '../../runtime/src/concurrency';

describe('forEachSliced', () => {
  test('visits every item in order and lets the event loop run between slices', async () => {
    const seen: number[] = [];
    const turns: number[] = [];
    // Queued before the walk starts: it runs only where the walk yields.
    setImmediate(() => turns.push(seen.length));
    await forEachSliced(Array.from({ length: 25 }, (_, i) => i), (i) => { seen.push(i); }, 10);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(turns).toEqual([10]);
  });

  test('waits for an asynchronous step before the next, and passes its error on', async () => {
    const order: string[] = [];
    await forEachSliced(['a', 'b'], async (item) => {
      order.push(`start ${item}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      order.push(`end ${item}`);
    });
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b']);
    await expect(forEachSliced([1], () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });
});
