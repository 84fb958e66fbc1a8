import { KvEntry, KvStore, Lease } from '../kv/store';
import { InstanceRecord, decodeInstance, encodeRecord } from '../registry/records';

/**
 * Membership: this instance's record, published under its lease so it vanishes when the process does, and the
 * live view of every instance's record.
 */

export const INSTANCES_PREFIX = 'instances/';

/** How soon a significant change is published, and how often the record is refreshed anyway (request rates move). */
const PUBLISH_DEBOUNCE_MS = 50;
const REFRESH_INTERVAL_MS = 5_000;
const PUBLISH_RETRY_MS = 500;

export interface ClusterEvents {
  /** An instance's record appeared or changed. */
  readonly onInstanceUp?: (id: string, record: InstanceRecord) => void;
  /** An instance's record is gone (it left, or its lease expired). */
  readonly onInstanceGone?: (id: string) => void;
  /** This instance's record is back after its lease was lost (the store was unreachable for longer than the TTL). */
  readonly onRejoined?: () => void;
  /** Publishing failed (store unreachable); the next attempt follows automatically. */
  readonly onPublishError?: (err: Error) => void;
  readonly onMalformed?: (err: Error) => void;
}

export class Cluster {
  private readonly records = new Map<string, InstanceRecord>();
  private lease: Lease | undefined;
  private publishTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private publishing: Promise<void> | undefined;
  private republishNeeded = false;
  private left = false;
  /** The lease was lost: the next successful publish is a rejoin. */
  private rejoining = false;

  constructor(
    private readonly store: KvStore,
    public readonly selfId: string,
    private readonly leaseTtlSeconds: number,
    private readonly snapshotSelf: () => InstanceRecord,
    private readonly events: ClusterEvents = {},
  ) {}

  /** Applies a store change under `instances/`. */
  apply(key: string, entry: KvEntry | undefined): void {
    if (!key.startsWith(INSTANCES_PREFIX)) return;
    const id = key.slice(INSTANCES_PREFIX.length);
    if (!entry) {
      if (this.records.delete(id)) this.events.onInstanceGone?.(id);
      return;
    }
    try {
      const record = decodeInstance(id, entry.value);
      this.records.set(id, record);
      this.events.onInstanceUp?.(id, record);
    } catch (err) {
      this.events.onMalformed?.(err as Error);
    }
  }

  /** Records of every live instance; this instance's own is always its current state, not the last published one. */
  live(): Map<string, InstanceRecord> {
    const result = new Map(this.records);
    if (!this.left) result.set(this.selfId, this.snapshotSelf());
    return result;
  }

  get(id: string): InstanceRecord | undefined {
    return id === this.selfId && !this.left ? this.snapshotSelf() : this.records.get(id);
  }

  /** Joins the mesh: grants the lease and publishes this instance's record under it. */
  async join(): Promise<void> {
    await this.ensureLease();
    await this.publishNow();
    this.refreshTimer = setInterval(() => this.requestPublish(), REFRESH_INTERVAL_MS);
    this.refreshTimer.unref();
  }

  private async ensureLease(): Promise<Lease> {
    if (this.lease) return this.lease;
    const lease = await this.store.grantLease(this.leaseTtlSeconds);
    lease.onLost(() => {
      // The record went with the lease: take a new lease and publish again.
      if (this.lease === lease) this.lease = undefined;
      this.rejoining = true;
      if (!this.left) this.requestPublish();
    });
    this.lease = lease;
    return lease;
  }

  /** Asks for the record to be republished soon; calls within the debounce window coalesce. */
  requestPublish(): void {
    if (this.left || this.publishTimer) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      this.publishNow().catch((err: Error) => {
        this.events.onPublishError?.(err);
        // Keep trying soon: while this record is missing, others treat this instance as gone.
        setTimeout(() => this.requestPublish(), PUBLISH_RETRY_MS).unref();
      });
    }, PUBLISH_DEBOUNCE_MS);
    this.publishTimer.unref();
  }

  /** Publishes the current record now (serialised: a publish during a publish runs once more afterwards). */
  async publishNow(): Promise<void> {
    if (this.publishing) {
      this.republishNeeded = true;
      return this.publishing;
    }
    this.publishing = (async () => {
      try {
        do {
          this.republishNeeded = false;
          if (this.left) return;
          const lease = await this.ensureLease();
          const record = this.snapshotSelf();
          await this.store.put(INSTANCES_PREFIX + this.selfId, encodeRecord(record), { lease });
          if (this.rejoining) {
            this.rejoining = false;
            this.events.onRejoined?.();
          }
        } while (this.republishNeeded);
      } finally {
        this.publishing = undefined;
      }
    })();
    return this.publishing;
  }

  /** Leaves: stops publishing and revokes the lease, which deletes this instance's record. */
  async leave(): Promise<void> {
    this.left = true;
    clearTimeout(this.publishTimer);
    clearInterval(this.refreshTimer);
    await this.publishing?.catch(() => undefined);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke();
  }
}
