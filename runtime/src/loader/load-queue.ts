/**
 * Runs model loads with the runtime's concurrency limit. Loads a request is waiting for go ahead of background
 * work (proactive loads, scale-out, moves off a leaving instance). No gRPC here: tasks are plain functions.
 */

export type LoadPriority = 'request' | 'background';

interface QueuedTask {
  readonly run: () => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  readonly enqueuedAt: number;
}

export class LoadQueueClosedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'LoadQueueClosedError';
  }
}

export class LoadQueue {
  private readonly waiting: Record<LoadPriority, QueuedTask[]> = { request: [], background: [] };
  private running = 0;
  private closedReason: string | undefined;

  /**
   * @param concurrency loads that may run at once (the runtime's maxLoadingConcurrency)
   * @param onQueueDelay called with how long each task waited before starting (for metrics)
   */
  constructor(public concurrency: number, private readonly onQueueDelay?: (ms: number) => void) {}

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.request.length + this.waiting.background.length;
  }

  run<T>(priority: LoadPriority, task: () => Promise<T>): Promise<T> {
    if (this.closedReason !== undefined) return Promise.reject(new LoadQueueClosedError(this.closedReason));
    return new Promise<T>((resolve, reject) => {
      this.waiting[priority].push({ run: task, resolve: resolve as (v: unknown) => void, reject, enqueuedAt: Date.now() });
      this.pump();
    });
  }

  /** Moves a queued background task ahead: a request now waits for it. */
  promote(predicate: (task: () => Promise<unknown>) => boolean): void {
    const index = this.waiting.background.findIndex((t) => predicate(t.run));
    if (index >= 0) this.waiting.request.push(...this.waiting.background.splice(index, 1));
  }

  /** Rejects every queued (not yet running) task and refuses new ones; running tasks finish. */
  close(reason: string): void {
    this.closedReason = reason;
    for (const task of [...this.waiting.request, ...this.waiting.background]) task.reject(new LoadQueueClosedError(reason));
    this.waiting.request.length = 0;
    this.waiting.background.length = 0;
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const task = this.waiting.request.shift() ?? this.waiting.background.shift();
      if (!task) return;
      this.running++;
      this.onQueueDelay?.(Date.now() - task.enqueuedAt);
      task.run().then(task.resolve, task.reject).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }
}
