import { Metadata, ServiceError, credentials, status } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient, ModelInferRequest, ModelInferResponse } from '../../proto/gen/grpc_predict_v2';

/**
 * An open-loop load generator for the chaos scenarios: KServe v2 ModelInfer calls at a steady rate, spread over many
 * models and several entry instances, each answer checked. Calls are counted by the phase in which they were sent
 * (before / during / after the disturbance). It stops sending by itself at a bound on calls or time, so a scenario
 * that hangs cannot leave it running.
 */

export type Phase = 'before' | 'during' | 'after';
export const PHASES: readonly Phase[] = ['before', 'during', 'after'];

/** A front door the generator sends calls to. */
export interface LoadEntry {
  readonly name: string;
  readonly port: number;
}

export interface LoadOptions {
  readonly models: readonly string[];
  readonly entries: readonly LoadEntry[];
  /** Calls started per second, whatever the answers' latency (open loop). */
  readonly callsPerSecond: number;
  /** No call is started after this many. */
  readonly maxCalls: number;
  /** No call is started after this long. */
  readonly maxDurationMs: number;
  /** Deadline of each call. */
  readonly callTimeoutMs: number;
  /**
   * Calls in flight at most; a call due while this many are outstanding is skipped (and counted), so a stalled mesh
   * does not receive an unbounded burst when it recovers.
   */
  readonly maxInFlight: number;
  /** The answer a model gives for an input. */
  readonly expectedAnswer: (modelId: string, input: string) => string;
}

/** Counts of one phase. */
export interface PhaseReport {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  /** Latency percentiles of every finished call (ok or not), in ms; NaN when no call finished. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface LoadReport {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  /** gRPC code name (or WRONG_ANSWER) → count. */
  readonly failedByCode: ReadonlyMap<string, number>;
  /** A few failure messages per code, with the entry and model they concern. */
  readonly samples: ReadonlyMap<string, readonly string[]>;
  /** Calls never sent because `maxInFlight` calls were outstanding when they were due. */
  readonly skippedAtCap: number;
  /** Calls never sent because this process's event loop fell behind the schedule (a busy machine), not the mesh. */
  readonly skippedBehind: number;
  /** Why sending ended: 'stopped', or the bound that was reached. */
  readonly endedBy: string;
  readonly elapsedMs: number;
  readonly phases: Readonly<Record<Phase, PhaseReport>>;
}

const TICK_MS = 5;
const SAMPLES_PER_CODE = 3;
/** A backlog longer than this (after a pause of the event loop) is skipped rather than sent in one burst. */
const MAX_CATCH_UP_MS = 100;

interface PhaseCounts {
  sent: number;
  ok: number;
  failed: number;
  latencies: number[];
}

const emptyCounts = (): PhaseCounts => ({ sent: 0, ok: 0, failed: 0, latencies: [] });

export class LoadGenerator {
  private readonly clients = new Map<number, GRPCInferenceServiceClient>();
  private readonly counts: Record<Phase, PhaseCounts> = { before: emptyCounts(), during: emptyCounts(), after: emptyCounts() };
  private readonly failedByCode = new Map<string, number>();
  private readonly samples = new Map<string, string[]>();
  private readonly pending = new Set<Promise<void>>();
  private entries: readonly LoadEntry[];
  private phase: Phase = 'before';
  private sent = 0;
  private skippedAtCap = 0;
  private skippedBehind = 0;
  private inFlight = 0;
  /** Calls the schedule has dealt with so far (sent or skipped); call k is due at startedAt + k / rate. */
  private scheduled = 0;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended: string | undefined;

  constructor(private readonly options: LoadOptions) {
    if (options.entries.length === 0) throw new Error('the load generator needs at least one entry');
    if (options.models.length === 0) throw new Error('the load generator needs at least one model');
    this.entries = options.entries;
  }

  /** Starts sending. */
  start(): this {
    if (this.startedAt) throw new Error('the load generator was already started');
    this.startedAt = Date.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    return this;
  }

  /** Calls sent from now on count towards `phase`. */
  enterPhase(phase: Phase): void {
    this.phase = phase;
  }

  /**
   * Sends further calls only through these entries (an instance taken out of the Service's endpoints, or a new one
   * added). Calls already sent through a removed entry finish normally.
   */
  setEntries(entries: readonly LoadEntry[]): void {
    if (entries.length === 0) throw new Error('the load generator needs at least one entry');
    this.entries = entries;
  }

  /** Calls of `phase` that have finished (ok or failed). */
  finished(phase: Phase): number {
    const c = this.counts[phase];
    return c.ok + c.failed;
  }

  /** Why sending ended, or undefined while it goes on. */
  get endedBy(): string | undefined {
    return this.ended;
  }

  /** Stops sending, waits for the calls in flight, and reports. */
  async stop(): Promise<LoadReport> {
    this.end('stopped');
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    return this.report();
  }

  private end(reason: string): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.ended ??= reason;
  }

  private tick(): void {
    const now = Date.now();
    const { callsPerSecond, maxCalls, maxDurationMs, maxInFlight } = this.options;
    if (now - this.startedAt >= maxDurationMs) return this.end(`time bound (${maxDurationMs} ms)`);
    if (this.sent >= maxCalls) return this.end(`call bound (${maxCalls} calls)`);
    // A stalled event loop owes a burst of calls; skip all but the last MAX_CATCH_UP_MS of it.
    const due = Math.floor(((now - this.startedAt) * callsPerSecond) / 1000);
    const owed = due - this.scheduled;
    const maxOwed = Math.ceil((MAX_CATCH_UP_MS * callsPerSecond) / 1000);
    if (owed > maxOwed) {
      this.skippedBehind += owed - maxOwed;
      this.scheduled += owed - maxOwed;
    }
    while (this.scheduled < due && this.sent < maxCalls) {
      this.scheduled++;
      if (this.inFlight >= maxInFlight) {
        this.skippedAtCap++;
        continue;
      }
      this.send();
    }
  }

  private send(): void {
    const n = this.sent++;
    const phase = this.phase;
    const counts = this.counts[phase];
    counts.sent++;
    // Each pass over the models shifts the entries by one, so every model is called through every entry even when
    // the counts share a factor (200 models, 2 entries).
    const entry = this.entries[(n + Math.floor(n / this.options.models.length)) % this.entries.length];
    const modelId = this.options.models[n % this.options.models.length];
    const input = `call ${n}`;
    const started = process.hrtime.bigint();
    this.inFlight++;
    const call = this.infer(entry, modelId, input).then((response) => {
      const answer = Buffer.from(response.outputs[0]?.contents?.bytesContents[0] ?? Buffer.alloc(0)).toString('utf8');
      const expected = this.options.expectedAnswer(modelId, input);
      if (answer === expected) {
        counts.ok++;
      } else {
        this.fail(counts, 'WRONG_ANSWER', `${entry.name} ${modelId}: expected "${expected}", got "${answer}"`);
      }
    }, (err: ServiceError) => {
      const code = typeof err.code === 'number' ? status[err.code] ?? String(err.code) : 'CLIENT_ERROR';
      this.fail(counts, code, `${entry.name} ${modelId}: ${err.details ?? err.message}`);
    }).finally(() => {
      counts.latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      this.inFlight--;
      this.pending.delete(call);
    });
    this.pending.add(call);
  }

  private fail(counts: PhaseCounts, code: string, message: string): void {
    counts.failed++;
    this.failedByCode.set(code, (this.failedByCode.get(code) ?? 0) + 1);
    const samples = this.samples.get(code) ?? [];
    if (samples.length < SAMPLES_PER_CODE) samples.push(message);
    this.samples.set(code, samples);
  }

  private client(entry: LoadEntry): GRPCInferenceServiceClient {
    let client = this.clients.get(entry.port);
    if (!client) {
      client = new GRPCInferenceServiceClient(`127.0.0.1:${entry.port}`, credentials.createInsecure());
      this.clients.set(entry.port, client);
    }
    return client;
  }

  private infer(entry: LoadEntry, modelId: string, input: string): Promise<ModelInferResponse> {
    const metadata = new Metadata();
    metadata.set('mm-model-id', modelId);
    const request = ModelInferRequest.fromPartial({
      inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], contents: { bytesContents: [Buffer.from(input)] } }],
    });
    const deadline = Date.now() + this.options.callTimeoutMs;
    return new Promise((resolve, reject) => {
      this.client(entry).modelInfer(request, metadata, { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  private report(): LoadReport {
    const phases = {} as Record<Phase, PhaseReport>;
    for (const phase of PHASES) {
      const c = this.counts[phase];
      const sorted = [...c.latencies].sort((a, b) => a - b);
      phases[phase] = {
        sent: c.sent,
        ok: c.ok,
        failed: c.failed,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted.length ? sorted[sorted.length - 1] : NaN,
      };
    }
    const ok = PHASES.reduce((sum, p) => sum + phases[p].ok, 0);
    const failed = PHASES.reduce((sum, p) => sum + phases[p].failed, 0);
    return {
      sent: this.sent,
      ok,
      failed,
      failedByCode: new Map(this.failedByCode),
      samples: new Map(this.samples),
      skippedAtCap: this.skippedAtCap,
      skippedBehind: this.skippedBehind,
      endedBy: this.ended ?? 'running',
      elapsedMs: Date.now() - this.startedAt,
      phases,
    };
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The block a scenario prints: its name, the totals, failures by code with samples, and latency per phase. */
export function formatSummary(scenario: string, report: LoadReport, notes: readonly string[] = []): string {
  const ms = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(1));
  const codes = [...report.failedByCode].sort((a, b) => b[1] - a[1]);
  const col = (values: ReadonlyArray<string | number>) => values.map((v) => String(v).padStart(9)).join('');
  const lines = [
    `chaos scenario: ${scenario}`,
    `  sent ${report.sent}  ok ${report.ok}  failed ${report.failed}  in ${(report.elapsedMs / 1000).toFixed(1)} s`
      + `  (not sent: ${report.skippedAtCap} at the in-flight cap, ${report.skippedBehind} behind schedule; ended by: ${report.endedBy})`,
    `  failed by code: ${codes.length ? codes.map(([code, n]) => `${code} ${n}`).join(', ') : 'none'}`,
    ...codes.flatMap(([code]) => (report.samples.get(code) ?? []).map((s) => `    ${code}: ${s}`)),
    `  ${'phase'.padEnd(12)}${col(PHASES)}`,
    `  ${'sent'.padEnd(12)}${col(PHASES.map((p) => report.phases[p].sent))}`,
    `  ${'failed'.padEnd(12)}${col(PHASES.map((p) => report.phases[p].failed))}`,
    `  ${'p50 ms'.padEnd(12)}${col(PHASES.map((p) => ms(report.phases[p].p50)))}`,
    `  ${'p99 ms'.padEnd(12)}${col(PHASES.map((p) => ms(report.phases[p].p99)))}`,
    `  ${'max ms'.padEnd(12)}${col(PHASES.map((p) => ms(report.phases[p].max)))}`,
    ...notes.map((n) => `  ${n}`),
  ];
  return `${lines.join('\n')}\n`;
}
