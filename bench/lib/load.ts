/**
 * Closed-loop load: `concurrency` workers, each issuing its next call as soon as the previous one answered, for a
 * fixed time. Latency is taken per call with the monotonic high-resolution clock.
 */

/** One call under test; resolves on success, rejects with the call's error. */
export type Call = () => Promise<void>;

/** The raw outcome of one closed-loop period. */
export interface LoopPeriod {
  /** Per successful call, in microseconds. */
  readonly latenciesUs: readonly number[];
  readonly errors: number;
  readonly firstError?: string;
  /** From the first call's start to the last call's end (workers finish their call in flight after the period). */
  readonly elapsedMs: number;
}

/** Periods of one target and concurrency, merged. */
export interface LoopSummary {
  /** Calls that succeeded. */
  readonly calls: number;
  readonly errors: number;
  /** The first error's message, to say why a run is invalid. */
  readonly firstError?: string;
  readonly elapsedMs: number;
  /** Successful calls per second over `elapsedMs`. */
  readonly callsPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** calls/s of each period on its own: uneven figures mean something else on the machine interfered. */
  readonly periodCallsPerSecond: readonly number[];
}

export async function closedLoop(call: Call, concurrency: number, durationMs: number): Promise<LoopPeriod> {
  const latenciesUs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(durationMs * 1e6));

  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= end) return;
      try {
        await call();
        latenciesUs.push(Number(process.hrtime.bigint() - t0) / 1_000);
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  return { latenciesUs, errors, ...(firstError !== undefined ? { firstError } : {}), elapsedMs };
}

export function summarize(periods: readonly LoopPeriod[]): LoopSummary {
  const sorted = Float64Array.from(periods.flatMap((p) => p.latenciesUs)).sort();
  const elapsedMs = periods.reduce((sum, p) => sum + p.elapsedMs, 0);
  const firstError = periods.find((p) => p.firstError !== undefined)?.firstError;
  return {
    calls: sorted.length,
    errors: periods.reduce((sum, p) => sum + p.errors, 0),
    ...(firstError !== undefined ? { firstError } : {}),
    elapsedMs,
    callsPerSecond: elapsedMs > 0 ? sorted.length / (elapsedMs / 1_000) : NaN,
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
    maxUs: sorted.length ? sorted[sorted.length - 1] : NaN,
    periodCallsPerSecond: periods.map((p) => Math.round(p.latenciesUs.length / (p.elapsedMs / 1_000))),
  };
}

/** Nearest-rank percentile of ascending samples; NaN when there are none. */
export function percentile(sortedAscending: Float64Array, fraction: number): number {
  if (sortedAscending.length === 0) return NaN;
  const rank = Math.ceil(fraction * sortedAscending.length);
  return sortedAscending[Math.min(sortedAscending.length, Math.max(1, rank)) - 1];
}

/**
 * Runs `task(0)` … `task(count - 1)` with at most `concurrency` in flight, each index once, timing each one. The
 * outcome has the shape of a closed-loop period, so `summarize` applies.
 */
export async function forEachConcurrently(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<LoopPeriod> {
  const latenciesUs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const t0 = process.hrtime.bigint();
      try {
        await task(i);
        latenciesUs.push(Number(process.hrtime.bigint() - t0) / 1_000);
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  return { latenciesUs, errors, ...(firstError !== undefined ? { firstError } : {}), elapsedMs };
}

/**
 * Open-loop load: calls start on a fixed schedule (`ratePerSecond`), whether or not earlier ones have answered, so a
 * slow answer cannot slow the offered load down (no coordinated omission). Latency counts from the scheduled start,
 * so a client that fell behind its schedule shows it too.
 */
export async function openLoop(call: (index: number) => Promise<void>, ratePerSecond: number, durationMs: number): Promise<LoopPeriod> {
  const latenciesUs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const total = Math.round((ratePerSecond * durationMs) / 1_000);
  const intervalNs = 1e9 / ratePerSecond;
  const start = process.hrtime.bigint();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + BigInt(Math.round(i * intervalNs));
    const waitMs = Number(due - process.hrtime.bigint()) / 1e6;
    if (waitMs >= 1) await new Promise((resolve) => setTimeout(resolve, waitMs));
    inFlight.push(call(i).then(
      () => { latenciesUs.push(Number(process.hrtime.bigint() - due) / 1_000); },
      (err: unknown) => {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }));
  }
  await Promise.all(inFlight);
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  return { latenciesUs, errors, ...(firstError !== undefined ? { firstError } : {}), elapsedMs };
}
