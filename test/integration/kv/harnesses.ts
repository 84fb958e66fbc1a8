import { Etcd3 } from 'etcd3';
import { EmbeddedBackend, EmbeddedBackendOptions, EmbeddedStore, EtcdStore, KvStore } from '../../../runtime/src/kv';

/** What the behavioural suite needs from a store implementation. */
export interface StoreHarness {
  /** Forgets all history up to now. Only where no other test file shares the server. */
  readonly compact?: () => Promise<void>;
  /** A new client on the shared data, namespaced by `serviceName` (different names never see each other's keys). */
  open(serviceName: string): KvStore;
  /** Ends a lease the way another process (or an operator) would; its owner should report it lost. */
  revokeLeaseElsewhere(leaseId: string): Promise<void>;
  dispose(): Promise<void>;
}

export function embeddedHarness(options: EmbeddedBackendOptions = {}): StoreHarness {
  const backend = new EmbeddedBackend(options);
  return {
    open: (serviceName) => new EmbeddedStore({ serviceName, backend }),
    revokeLeaseElsewhere: async (id) => {
      if (!backend.revokeLease(id)) throw new Error(`no lease ${id}`);
    },
    compact: async () => backend.compact(),
    dispose: async () => undefined,
  };
}

export interface EtcdHarnessOptions {
  readonly endpoint: string;
  readonly rootPrefix: string;
  /** Offer `compact()`: only for a private etcd. */
  readonly compaction?: boolean;
  readonly requestTimeoutMs?: number;
}

export function etcdHarness(options: EtcdHarnessOptions): StoreHarness {
  // An independent client plays "another process": it revokes leases and compacts behind the stores' backs.
  const admin = new Etcd3({ hosts: options.endpoint });
  return {
    open: (serviceName) => new EtcdStore({
      connection: { endpoints: [options.endpoint], rootPrefix: options.rootPrefix },
      serviceName,
      kvPrefix: 'mm',
      requestTimeoutMs: options.requestTimeoutMs,
    }),
    revokeLeaseElsewhere: async (id) => {
      await admin.leaseClient.leaseRevoke({ ID: id });
    },
    compact: options.compaction ? async () => {
      const { header } = await admin.kv.range({ key: Buffer.from('\0') });
      await admin.kv.compact({ revision: header.revision, physical: true });
    } : undefined,
    dispose: async () => admin.close(),
  };
}
