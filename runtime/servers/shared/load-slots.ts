/** Releases a slot taken with `LoadSlots.acquire`; calling it more than once is harmless. */
export type ReleaseSlot = () => void;

interface Waiter {
  readonly grant: (release: ReleaseSlot) => void;
  readonly reject: (err: Error) => void;
}

/**
 * The load queue: at most `limit` loads hold a slot at once; the rest wait first-come, first-served.
 * A waiter can leave the queue (its load was cancelled) without ever taking a slot.
 */
export class LoadSlots {
  private active = 0;
  private readonly waiters: Waiter[] = [];
  private closedWith: Error | undefined;

  constructor(public readonly limit: number) {}

  /** Loads holding a slot now. */
  get busy(): number {
    return this.active;
  }

  /** Loads waiting for a slot now. */
  get queued(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first or the queue closes. */
  acquire(signal?: AbortSignal): Promise<ReleaseSlot> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise<ReleaseSlot>((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(abortReason(signal!));
      };
      const waiter: Waiter = {
        grant: (release) => { signal?.removeEventListener('abort', onAbort); resolve(release); },
        reject: (err) => { signal?.removeEventListener('abort', onAbort); reject(err); },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Rejects every waiter and every later `acquire` with `reason`; slots already held stay valid until released. */
  close(reason: Error): void {
    this.closedWith = reason;
    for (const waiter of this.waiters.splice(0)) waiter.reject(reason);
  }

  private releaser(): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // Hand the slot straight to the next waiter, so `active` never dips and lets a newcomer jump the queue.
      if (next) next.grant(this.releaser());
      else this.active--;
    };
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
