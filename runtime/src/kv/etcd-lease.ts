import { EtcdLeaseInvalidError, ILeaseKeepAliveResponse, Lease as EtcdLease } from 'etcd3';
import { MeshError, unavailable } from '../errors';
import { KvLeaseNotFoundError } from './errors';
import { Lease } from './store';

/** What a lease handle needs from the store that granted it. */
export interface EtcdLeaseHost {
  call<T>(what: string, op: () => Promise<T>, leaseId?: string): Promise<T>;
  translate(err: unknown, what: string, leaseId?: string): MeshError;
  forgetLease(lease: EtcdLeaseHandle): void;
  deadline(): { deadline: number };
  unreachableMessage(what: string): string;
}

/**
 * A granted etcd lease. etcd3 keeps it alive and reports it lost when a keep-alive answer says it is gone (revoked
 * elsewhere) or after 2 × TTL without answers. A TTL without answers already means etcd has let it expire, so this
 * handle reports it lost then and stops the keep-alive.
 */
export class EtcdLeaseHandle implements Lease {
  private leaseId = '';
  private ttlMs: number;
  private readonly listeners: ((err: Error) => void)[] = [];
  private lostError?: Error;
  private ended = false;
  private expiry?: NodeJS.Timeout;

  constructor(private readonly inner: EtcdLease, readonly ttlSeconds: number, private readonly store: EtcdLeaseHost) {
    this.ttlMs = ttlSeconds * 1000;
    inner.on('lost', (err) => this.lose(err instanceof EtcdLeaseInvalidError
      ? new KvLeaseNotFoundError(this.leaseId, 'etcd keep-alive')
      : store.translate(err, `keep-alive of lease ${this.leaseId}`)));
    inner.on('keepaliveSucceeded', (res: ILeaseKeepAliveResponse) => this.renewed(res));
  }

  get id(): string {
    return this.leaseId;
  }

  granted(id: string): void {
    this.leaseId = id;
    this.armExpiry();
  }

  onLost(listener: (err: Error) => void): void {
    if (this.lostError) {
      const err = this.lostError;
      setImmediate(() => listener(err));
    } else {
      this.listeners.push(listener);
    }
  }

  async revoke(): Promise<void> {
    // Stop the keep-alive first, so it stops even when the revoke call itself fails (store closed or unreachable).
    this.release();
    this.store.forgetLease(this);
    // etcd3 treats "already gone" as success; keys of a lease lost to a timeout may still exist, so revoke anyway.
    await this.store.call(`revoke lease ${this.leaseId}`, () => this.inner.revoke(this.store.deadline()), this.leaseId);
  }

  /** Stops the keep-alive without revoking: the lease expires after its TTL. */
  release(): void {
    this.ended = true;
    this.disarm();
    this.inner.release();
  }

  private renewed(res: ILeaseKeepAliveResponse): void {
    // etcd may grant more than was asked (its minimum TTL); its answer is the real one.
    const granted = Number(res.TTL) * 1000;
    if (granted > this.ttlMs) this.ttlMs = granted;
    this.armExpiry();
  }

  private armExpiry(): void {
    if (this.ended) return;
    this.disarm();
    this.expiry = setTimeout(() => this.lose(unavailable(
      `${this.store.unreachableMessage(`keep-alive of lease ${this.leaseId}`)}: no keep-alive answered for ${this.ttlMs / 1000}s, so the lease has expired`)),
    this.ttlMs);
    this.expiry.unref();
  }

  private disarm(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = undefined;
  }

  private lose(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.disarm();
    this.inner.release();
    this.store.forgetLease(this);
    this.lostError = err;
    for (const listener of this.listeners.splice(0)) listener(err);
  }
}
