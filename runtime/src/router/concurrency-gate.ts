import { status } from '@grpc/grpc-js';
import { LocalCopy } from '../cache/lru-cache';
import { MeshError } from '../errors';

/**
 * Per-copy admission for runtimes that limit each model's concurrency (limitModelConcurrency): calls beyond a copy's
 * limit wait in a bounded FIFO queue; when the queue is full the call is refused with RESOURCE_EXHAUSTED.
 */
export class ConcurrencyGate {
  private readonly queues = new Map<string, Array<() => void>>();

  constructor(private readonly maxQueued: number) {}

  /** `copy` is at its limit: a call must `admit` (wait its turn) before it is counted. */
  mustWait(copy: LocalCopy): boolean {
    return copy.maxConcurrency > 0 && copy.inFlight >= copy.maxConcurrency;
  }

  /** Resolves once `copy` may take one more call (the caller then counts it in `copy.inFlight`). */
  async admit(copy: LocalCopy): Promise<void> {
    while (this.mustWait(copy)) {
      let queue = this.queues.get(copy.modelId);
      if (!queue) this.queues.set(copy.modelId, queue = []);
      if (queue.length >= this.maxQueued) {
        throw new MeshError(status.RESOURCE_EXHAUSTED,
          `model ${copy.modelId} is serving its limit of ${copy.maxConcurrency} concurrent calls and ${queue.length} more are waiting; retry later`);
      }
      await new Promise<void>((resolve) => queue!.push(resolve));
    }
  }

  /** A call on `modelId` finished: the longest waiter may try again. */
  release(modelId: string): void {
    const queue = this.queues.get(modelId);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.queues.delete(modelId);
    next?.();
  }
}
