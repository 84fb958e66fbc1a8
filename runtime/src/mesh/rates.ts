/**
 * Request rates per model on this instance, over a sliding minute kept as six ten-second buckets: cheap to record on
 * the hot path (two array increments) and enough to decide scale-out. Each minute also keeps its running sum, and one
 * more minute counts every model together, so reading a rate or the instance's total never sums buckets or visits
 * every model: with 20,000 copies here, doing so took tens of milliseconds of the event loop on every instance
 * publish and scale-out check, and calls waited that long.
 */

const BUCKET_MS = 10_000;
const BUCKETS = 6;

interface MinuteCounts {
  /** Bucket index (time / BUCKET_MS) of the newest bucket. */
  epoch: number;
  readonly counts: number[];
  /** Sum of `counts`. */
  total: number;
}

const newMinute = (epoch: number): MinuteCounts => ({ epoch, counts: new Array<number>(BUCKETS).fill(0), total: 0 });

/** Empties the buckets that fell out of the minute since `minute.epoch`. */
function advance(minute: MinuteCounts, epoch: number): void {
  if (epoch <= minute.epoch) return;
  const gap = Math.min(BUCKETS, epoch - minute.epoch);
  for (let i = 1; i <= gap; i++) {
    const slot = (minute.epoch + i) % BUCKETS;
    minute.total -= minute.counts[slot];
    minute.counts[slot] = 0;
  }
  minute.epoch = epoch;
}

function count(minute: MinuteCounts, epoch: number): void {
  advance(minute, epoch);
  minute.counts[epoch % BUCKETS]++;
  minute.total++;
}

export class RateTracker {
  private readonly models = new Map<string, MinuteCounts>();
  private readonly all = newMinute(0);

  constructor(private readonly now: () => number = Date.now) {}

  private epoch(): number {
    return Math.floor(this.now() / BUCKET_MS);
  }

  /** Counts one request served for `modelId`. */
  record(modelId: string): void {
    const epoch = this.epoch();
    let minute = this.models.get(modelId);
    if (!minute) {
      minute = newMinute(epoch);
      this.models.set(modelId, minute);
    }
    count(minute, epoch);
    count(this.all, epoch);
  }

  /** Requests in the last minute for `modelId`. */
  perMinute(modelId: string): number {
    const minute = this.models.get(modelId);
    if (!minute) return 0;
    advance(minute, this.epoch());
    return minute.total;
  }

  /**
   * Models with at least `minRpm` requests (and at least one) in the last minute, with their rates; forgets models
   * that went quiet. Builds nothing for the others: scale-out asks this of every copy's rate every few seconds.
   */
  busy(minRpm: number): Array<[string, number]> {
    const epoch = this.epoch();
    const result: Array<[string, number]> = [];
    for (const [modelId, minute] of this.models) {
      advance(minute, epoch);
      if (minute.total === 0) this.models.delete(modelId);
      else if (minute.total >= minRpm) result.push([modelId, minute.total]);
    }
    return result;
  }

  /** Requests in the last minute over all models. */
  total(): number {
    advance(this.all, this.epoch());
    return this.all.total;
  }
}
