import type { EtcdServer } from './etcd';

export default async function globalTeardown(): Promise<void> {
  const etcd = (globalThis as { __MM_TEST_ETCD__?: EtcdServer }).__MM_TEST_ETCD__;
  await etcd?.stop();
}
