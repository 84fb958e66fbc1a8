/** Runs `fn` over `items` with at most `limit` calls in flight; resolves when all have settled (errors are the caller's to catch in `fn`). */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const worker = async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) await fn(next.value);
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
}

/**
 * Runs `fn` over `items` in order, letting the event loop run after every `sliceSize` items: a periodic walk over
 * 100,000 records would otherwise hold up every call waiting on this process for a tenth of a second or more.
 */
export async function forEachSliced<T>(items: Iterable<T>, fn: (item: T) => void | Promise<void>, sliceSize = 2_000): Promise<void> {
  let visited = 0;
  for (const item of items) {
    const pending = fn(item);
    if (pending) await pending;
    if (++visited % sliceSize === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}
