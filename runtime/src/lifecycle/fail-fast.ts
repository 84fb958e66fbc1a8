/**
 * Start-up fail-fast: a freshly started instance whose loads fail where the same models load elsewhere is most
 * likely a bad new version (image, config, node). During the clearance period after start such an instance trips and
 * stays not ready, so a rolling update stalls on it instead of routing traffic to it. Pure: fed outcomes, no I/O.
 */

export interface FailFastOptions {
  /** How long after start loads are judged (upstream's BOOTSTRAP_CLEARANCE_PERIOD_MS). */
  readonly clearancePeriodMs: number;
  readonly startTime: number;
  /** More failures of models that are loaded elsewhere than this trips. @default 2 */
  readonly maxFatalFailures?: number;
  /** With more loads than this, a failure share above `maxFailureRatio` trips. @default 20 */
  readonly minLoadsForRatio?: number;
  /** @default 0.5 */
  readonly maxFailureRatio?: number;
}

export interface LoadOutcome {
  readonly ok: boolean;
  /** The model was loaded on another instance when it failed here: the fault is likely this instance's. */
  readonly loadedElsewhere: boolean;
  /**
   * The failure was transient (model server unreachable, storage unreachable); those say nothing about this
   * instance's version and are not counted.
   */
  readonly transient: boolean;
}

export class FailFast {
  private loads = 0;
  private failures = 0;
  private fatal = 0;
  private trippedReason: string | undefined;

  constructor(private readonly o: FailFastOptions) {}

  /** Counts one finished load; returns the reason when this outcome trips the check. */
  record(outcome: LoadOutcome, now: number): string | undefined {
    if (this.trippedReason !== undefined || now - this.o.startTime > this.o.clearancePeriodMs) return undefined;
    if (!outcome.ok && outcome.transient) return undefined;
    this.loads++;
    if (!outcome.ok) {
      this.failures++;
      if (outcome.loadedElsewhere) this.fatal++;
    }
    const maxFatal = this.o.maxFatalFailures ?? 2;
    const minLoads = this.o.minLoadsForRatio ?? 20;
    const maxRatio = this.o.maxFailureRatio ?? 0.5;
    if (this.fatal > maxFatal) {
      this.trippedReason = `${this.fatal} loads failed here of models that are loaded on other instances`;
    } else if (this.loads > minLoads && this.failures / this.loads > maxRatio) {
      this.trippedReason = `${this.failures} of ${this.loads} loads failed`;
    }
    return this.trippedReason;
  }

  /** Why this instance stays not ready, once tripped (it never untrips: the process is restarted or replaced). */
  get tripped(): string | undefined {
    return this.trippedReason;
  }
}
