/**
 * Cleanups of the scenario running now, so an interrupted benchmark (Ctrl-C, SIGTERM) still stops every process it
 * started instead of leaving meshes, runtimes and etcd behind.
 */
const active = new Set<() => Promise<void>>();

/** Runs `body`, then `cleanup` (which must be safe to run twice: a signal may have run it already). */
export async function withCleanup<T>(cleanup: () => Promise<void>, body: () => Promise<T>): Promise<T> {
  active.add(cleanup);
  try {
    return await body();
  } finally {
    active.delete(cleanup);
    await cleanup();
  }
}

export function cleanUpOnSignals(): void {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping the processes this benchmark started\n`);
      void Promise.allSettled([...active].map((cleanup) => cleanup())).then(() => process.exit(code));
    });
  }
}
