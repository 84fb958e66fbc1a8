import { randomBytes } from 'node:crypto';

/** Environment variable through which jest's global set-up hands the shared etcd endpoint to test workers. */
export const ETCD_ENDPOINT_ENV = 'MM_TEST_ETCD_ENDPOINT';

/** The shared test etcd's endpoint (`http://127.0.0.1:<port>`). */
export function sharedEtcdEndpoint(): string {
  const endpoint = process.env[ETCD_ENDPOINT_ENV];
  if (!endpoint) throw new Error(`${ETCD_ENDPOINT_ENV} is not set: run tests through jest so its global set-up starts etcd`);
  return endpoint;
}

/** A key prefix no other test uses, so tests can share one etcd. */
export function uniquePrefix(label: string): string {
  return `/test/${label}-${randomBytes(4).toString('hex')}/`;
}
