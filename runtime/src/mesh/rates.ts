/**
 * Request rates per model on this instance, over a sliding minute kept as six ten-second buckets: cheap to record on
 * the hot path (one array increment) and enough to decide scale-out.
 */

const BUCKET_MS = 10_000;
const BUCKETS = 6;

interface ModelRate {
  /** Bucket index (time / BUCKET_MS) of `counts[0]`'s slot rotation. */
  epoch: number;
  readonly counts: number[];
}

export class RateTracker {
  private readonly models = new Map<string, ModelRate>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Counts one request served for `modelId`. */
  record(modelId: string): void {
    const epoch = Math.floor(this.now() / BUCKET_MS);
    let rate = this.models.get(modelId);
    if (!rate) {
      rate = { epoch, counts: new Array<number>(BUCKETS).fill(0) };
      this.models.set(modelId, rate);
    }
    this.advance(rate, epoch);
    rate.counts[epoch % BUCKETS]++;
  }

  private advance(rate: ModelRate, epoch: number): void {
    const gap = Math.min(BUCKETS, epoch - rate.epoch);
    for (let i = 1; i <= gap; i++) rate.counts[(rate.epoch + i) % BUCKETS] = 0;
    if (epoch > rate.epoch) rate.epoch = epoch;
  }

  /** Requests in the last minute for `modelId`. */
  perMinute(modelId: string): number {
    const rate = this.models.get(modelId);
    if (!rate) return 0;
    this.advance(rate, Math.floor(this.now() / BUCKET_MS));
    return rate.counts.reduce((a, b) => a + b, 0);
  }

  /** Every model with requests in the last minute, and its rate; forgets models that went quiet. */
  active(): Map<string, number> {
    const result = new Map<string, number>();
    for (const modelId of [...this.models.keys()]) {
      const rpm = this.perMinute(modelId);
      if (rpm > 0) result.set(modelId, rpm);
      else this.models.delete(modelId);
    }
    return result;
  }

  /** Requests in the last minute over all models. */
  total(): number {
    let sum = 0;
    for (const rpm of this.active().values()) sum += rpm;
    return sum;
  }
}
