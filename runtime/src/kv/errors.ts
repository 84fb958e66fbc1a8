import { status } from '@grpc/grpc-js';
import { MeshError } from '../errors';

/**
 * A write named a lease that no longer exists (expired or revoked). The owner must grant a new lease and write again;
 * a retry with the same lease can never succeed.
 */
export class KvLeaseNotFoundError extends MeshError {
  constructor(public readonly leaseId: string, context: string) {
    super(status.FAILED_PRECONDITION, `${context}: lease ${leaseId} not found (expired or revoked); grant a new lease`);
    this.name = 'KvLeaseNotFoundError';
  }
}

/** The store was used after `close()`. */
export class KvStoreClosedError extends MeshError {
  constructor(description: string, context: string) {
    super(status.FAILED_PRECONDITION, `${context}: ${description} is closed`);
    this.name = 'KvStoreClosedError';
  }
}

/** A transaction named the same key twice (etcd rejects that, so the embedded store does too). */
export function duplicateTxnKey(key: string): MeshError {
  return new MeshError(status.INVALID_ARGUMENT, `transaction names key "${key}" more than once`);
}

/** A lease TTL outside what both stores accept. */
export function checkTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new MeshError(status.INVALID_ARGUMENT, `lease TTL must be a whole number of seconds >= 1, got ${ttlSeconds}`);
  }
}

/**
 * A watch cannot continue from where it was (its start revision was compacted, or the server cancelled it): handed to
 * `onResyncNeeded`. The watcher re-reads the prefix and watches again from the new revision.
 */
export class KvResyncNeededError extends MeshError {
  constructor(message: string) {
    super(status.FAILED_PRECONDITION, message);
    this.name = 'KvResyncNeededError';
  }
}
