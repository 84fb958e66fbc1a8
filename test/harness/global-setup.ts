import { startEtcd } from './etcd';
import { ETCD_ENDPOINT_ENV } from './shared-etcd';

/** Starts the one etcd that integration tests share (each test uses its own key prefix). */
export default async function globalSetup(): Promise<void> {
  const etcd = await startEtcd();
  process.env[ETCD_ENDPOINT_ENV] = etcd.endpoint;
  (globalThis as { __MM_TEST_ETCD__?: typeof etcd }).__MM_TEST_ETCD__ = etcd;
}
