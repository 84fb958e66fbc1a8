import { EmbeddedBackend, EmbeddedStore } from './embedded-store';
import { FileReader, loadEtcdConnection, parseKvStoreSetting } from './etcd-connection';
import { EtcdStore } from './etcd-store';
import { KvStore } from './store';
import { StoreDefaults } from '../../../lib/contract';

export * from './store';
export * from './errors';
export * from './namespace';
export * from './etcd-connection';
export * from './etcd-store';
export * from './embedded-store';
export * from './mirror';
export * from './election';

export interface OpenStoreOptions {
  /** `MM_SERVICE_NAME`. */
  readonly serviceName: string;
  /** `MM_KVSTORE_PREFIX`. @default 'mm' */
  readonly kvPrefix?: string;
  /** etcd only: bound on each call before it fails with UNAVAILABLE. @default 5000 */
  readonly requestTimeoutMs?: number;
  /** etcd only: check that etcd answers (and accepts the credentials) before returning. @default true */
  readonly checkConnection?: boolean;
  /** embedded only: share data with other stores in this process. @default a new backend */
  readonly embeddedBackend?: EmbeddedBackend;
  /** Reads the etcd_connection file and the files it names. @default fs.readFileSync */
  readonly readFile?: FileReader;
}

/**
 * Opens the store `KV_STORE` names: `embedded`, `etcd:<path to etcd_connection JSON>` or `etcd:<host:port>[,…]`.
 * Bad settings fail with INVALID_ARGUMENT naming the field; an unreachable etcd with UNAVAILABLE naming its endpoints.
 */
export async function openStore(kvStoreSetting: string, options: OpenStoreOptions): Promise<KvStore> {
  const setting = parseKvStoreSetting(kvStoreSetting);
  const kvPrefix = options.kvPrefix ?? StoreDefaults.KV_STORE_PREFIX;
  if (setting.kind === 'embedded') {
    return new EmbeddedStore({ serviceName: options.serviceName, kvPrefix, backend: options.embeddedBackend });
  }
  const store = new EtcdStore({
    connection: loadEtcdConnection(setting, options.readFile),
    serviceName: options.serviceName,
    kvPrefix,
    requestTimeoutMs: options.requestTimeoutMs,
  });
  if (options.checkConnection !== false) {
    try {
      await store.checkConnection();
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return store;
}
