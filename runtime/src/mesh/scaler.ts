import { Cluster } from '../cluster/cluster';
import { Logger } from '../log';
import { copiesToAdd } from '../placement';
import { Placer } from './placer';
import { RateTracker } from './rates';
import { Registry } from '../registry/registry';

/**
 * Scale-out: a copy served here above `MM_SCALEUP_RPM_THRESHOLD` requests per minute gets more copies elsewhere.
 * Checked every ten seconds; a model whose copies are still loading is left alone until they finish.
 */

export interface ScalerOptions {
  readonly selfId: string;
  readonly registry: Registry;
  readonly cluster: Cluster;
  readonly placer: Placer;
  readonly rates: RateTracker;
  readonly thresholdRpm: number;
  readonly log: Logger;
  readonly intervalMs?: number;
}

export class Scaler {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ScalerOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.check().catch((err: Error) => this.o.log.warn('scale-out check failed', { err })), this.o.intervalMs ?? 10_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async check(): Promise<void> {
    const live = this.o.cluster.live();
    for (const [modelId, rpm] of this.o.rates.busy(this.o.thresholdRpm)) {
      const record = this.o.registry.models.get(modelId);
      if (!record || !record.copies[this.o.selfId]) continue;
      const copies = Object.values(record.copies);
      if (copies.some((c) => c.state === 'loading')) continue;
      const candidates = [...live.entries()].filter(([id, r]) => !record.copies[id] && !r.shuttingDown).length;
      // The rate is this copy's own, so it counts as one copy's share.
      const add = copiesToAdd(rpm, 1, this.o.thresholdRpm, candidates);
      for (let i = 0; i < add; i++) {
        const result = await this.o.placer.ensureCopy(modelId, { priority: 'background', preferLocal: false, additional: true });
        if (result.kind !== 'started') break;
        this.o.log.info('adding a copy of a busy model', { modelId, rpm, threshold: this.o.thresholdRpm, on: result.instanceId });
      }
    }
  }
}
