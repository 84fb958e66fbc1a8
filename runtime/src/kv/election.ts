import { KvLeaseNotFoundError, KvStoreClosedError } from './errors';
import { KvMirror } from './mirror';
import { KvEntry, KvStore, Lease } from './store';

export interface ElectionOptions {
  /** Key the leader holds, relative to the store's namespace. @default 'leader' */
  readonly key?: string;
  /** TTL of the candidate's lease: how long a vanished leader blocks the next one. @default 10 */
  readonly ttlSeconds?: number;
  /** Pause before campaigning again after a store error. @default 1000 */
  readonly retryDelayMs?: number;
  /** Store errors while campaigning; the election keeps trying. */
  readonly onError?: (err: Error) => void;
}

/**
 * Leader election on any KvStore. Each candidate holds a lease; the leader is whoever created `key` (value: its id,
 * bound to its lease) with a create-only write. Everyone mirrors the key; when it disappears (the leader resigned or
 * its lease ended) every candidate tries again. A candidate is leader exactly while the key holds its id under its
 * current lease, so a lost lease means lost leadership even before the key's deletion is seen.
 */
export class LeaderElection {
  readonly key: string;
  private readonly ttlSeconds: number;
  private readonly retryDelayMs: number;
  private readonly gainedListeners: (() => void)[] = [];
  private readonly lostListeners: ((reason: Error) => void)[] = [];
  private readonly changedListeners: ((leaderId: string | undefined) => void)[] = [];
  private mirror?: KvMirror;
  private lease?: Lease;
  /** The leader key as last observed, and the revision of that observation (older observations are ignored). */
  private current?: KvEntry;
  private observedRevision = 0;
  private leading = false;
  private running = false;
  private campaigning = false;
  private campaignAgain = false;
  /** The running (or last) campaign, so `resign()` can wait until no call of this election is in flight. */
  private campaignDone?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly store: KvStore, readonly candidateId: string, private readonly options: ElectionOptions = {}) {
    this.key = options.key ?? 'leader';
    this.ttlSeconds = options.ttlSeconds ?? 10;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
  }

  /** Whether this candidate leads now. */
  get isLeader(): boolean {
    return this.leading;
  }

  /** The current leader's id, as far as this candidate knows; undefined while there is none. */
  get leaderId(): string | undefined {
    return this.current?.value;
  }

  /** This candidate's lease, if it holds one (for logs). */
  get leaseId(): string | undefined {
    return this.lease?.id;
  }

  /** Joins the election; resolves after the first attempt, when the leader (this candidate or another) is known. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.current = undefined;
    this.observedRevision = 0;
    const mirror = new KvMirror(this.store, this.key, { onError: (err) => this.report(err) });
    this.mirror = mirror;
    mirror.onChange((key, entry) => {
      if (key === this.key) this.observe(entry, entry?.modRevision ?? mirror.revision);
    });
    try {
      await mirror.ready;
    } catch (err) {
      this.running = false;
      this.mirror = undefined;
      await mirror.close();
      throw err;
    }
    await this.campaign();
  }

  onGained(listener: () => void): void {
    this.gainedListeners.push(listener);
  }

  /** Leadership ended: resigned, lease lost, or the key was taken or deleted. */
  onLost(listener: (reason: Error) => void): void {
    this.lostListeners.push(listener);
  }

  onLeaderChanged(listener: (leaderId: string | undefined) => void): void {
    this.changedListeners.push(listener);
  }

  /** Leaves the election: gives up leadership (revoking the lease deletes the key at once) and stops watching. */
  async resign(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const lease = this.lease;
    this.lease = undefined;
    this.evaluate(new Error(`${this.candidateId} resigned`));
    try {
      await lease?.revoke();
    } finally {
      await this.campaignDone;
      await this.mirror?.close();
      this.mirror = undefined;
      this.current = undefined;
    }
  }

  private campaign(): Promise<void> {
    // One attempt at a time; a request arriving meanwhile runs once more afterwards.
    if (this.campaigning) {
      this.campaignAgain = true;
      return this.campaignDone ?? Promise.resolve();
    }
    this.campaigning = true;
    this.campaignDone = this.runCampaign();
    return this.campaignDone;
  }

  /** Never rejects: errors are reported and retried. */
  private async runCampaign(): Promise<void> {
    let freshLeaseTried = false;
    try {
      do {
        this.campaignAgain = false;
        if (!this.running || this.current) break;
        try {
          const lease = this.lease ?? await this.newLease();
          const result = await this.store.putIfModRevision(this.key, this.candidateId, 0, { lease });
          if (result.entry) this.observe(result.entry, result.entry.modRevision);
        } catch (err) {
          if (!this.running) break;
          this.report(err as Error);
          if (err instanceof KvLeaseNotFoundError && !freshLeaseTried) {
            // The lease died under us: take a new one and try again at once (once; after that, back off).
            freshLeaseTried = true;
            this.dropLease();
            this.campaignAgain = true;
          } else {
            if (err instanceof KvLeaseNotFoundError) this.dropLease();
            // A closed store will never answer; whoever closed it is shutting down.
            if (!(err instanceof KvStoreClosedError)) this.scheduleRetry();
          }
        }
      } while (this.campaignAgain);
    } finally {
      this.campaigning = false;
    }
  }

  private async newLease(): Promise<Lease> {
    const lease = await this.store.grantLease(this.ttlSeconds);
    if (!this.running) {
      await lease.revoke();
      throw new Error(`${this.candidateId} resigned while campaigning`);
    }
    this.lease = lease;
    lease.onLost((err) => {
      if (this.lease !== lease) return;
      this.lease = undefined;
      this.evaluate(err);
      void this.campaign();
    });
    return lease;
  }

  private dropLease(): void {
    const lease = this.lease;
    this.lease = undefined;
    this.evaluate(new Error(`lease ${lease?.id} of ${this.candidateId} is gone`));
    lease?.revoke().catch(() => undefined);
  }

  private scheduleRetry(): void {
    if (!this.running || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.campaign();
    }, this.retryDelayMs);
  }

  private observe(entry: KvEntry | undefined, revision: number): void {
    if (revision < this.observedRevision) return;
    this.observedRevision = revision;
    const before = this.current?.value;
    this.current = entry;
    this.evaluate(new Error(entry ? `${entry.value} holds ${this.key}` : `${this.key} was deleted`));
    if (entry?.value !== before) for (const listener of this.changedListeners) listener(entry?.value);
    if (!entry && this.running) void this.campaign();
  }

  private evaluate(reasonIfLost: Error): void {
    const leads = this.running && this.lease !== undefined && this.current !== undefined
      && this.current.value === this.candidateId && this.current.lease === this.lease.id;
    if (leads === this.leading) return;
    this.leading = leads;
    if (leads) {
      for (const listener of this.gainedListeners) listener();
    } else {
      for (const listener of this.lostListeners) listener(reasonIfLost);
    }
  }

  private report(err: Error): void {
    this.options.onError?.(err);
  }
}
