import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { etcdHarness } from './harnesses';
import { describeKvStoreBehaviour } from './store-behaviour';
import { EtcdStore, openStore } from '../../../runtime/src/kv';
import { freePort } from '../../harness/ports';
import { sharedEtcdEndpoint, uniquePrefix } from '../../harness/shared-etcd';

describeKvStoreBehaviour('etcd', () => etcdHarness({ endpoint: sharedEtcdEndpoint(), rootPrefix: uniquePrefix('kv') }));

describe('etcd store', () => {
  let raw: Etcd3;
  let dir: string;
  beforeAll(() => {
    raw = new Etcd3({ hosts: sharedEtcdEndpoint() });
    dir = mkdtempSync(join(tmpdir(), 'mm-kv-'));
  });
  afterAll(() => {
    raw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('keys live under <root_prefix>/<kvPrefix>/<service>/ with no doubled slashes', async () => {
    const root = uniquePrefix('ns');
    for (const rootPrefix of [root, root.replace(/\/$/, '')]) {
      const store = new EtcdStore({ connection: { endpoints: [sharedEtcdEndpoint()], rootPrefix }, serviceName: 'svc', kvPrefix: 'mm' });
      expect(store.namespace).toBe(`${root}mm/svc/`);
      expect(store.description).toBe(`etcd ${sharedEtcdEndpoint()} prefix ${root}mm/svc/`);
      await store.put('registry/m1', rootPrefix);
      await store.close();
    }
    expect(await raw.get(`${root}mm/svc/registry/m1`).string()).toBe(root.replace(/\/$/, ''));
  });

  test('openStore reads an etcd_connection file (KV_STORE=etcd:<path>) and host:port lists (KV_STORE=etcd:<host:port>)', async () => {
    const root = uniquePrefix('open');
    const file = join(dir, 'etcd_connection');
    writeFileSync(file, JSON.stringify({ endpoints: sharedEtcdEndpoint().replace('http://', ''), root_prefix: root }));
    const fromFile = await openStore(`etcd:${file}`, { serviceName: 'modelmesh-serving' });
    await fromFile.put('k', 'from-file');
    await fromFile.close();
    expect(await raw.get(`${root}mm/modelmesh-serving/k`).string()).toBe('from-file');

    // This form has no root prefix: the namespace starts at /<kvPrefix>/.
    const kvPrefix = `kv-test-${process.pid}-${Date.now()}`;
    const fromList = await openStore(`etcd:${sharedEtcdEndpoint().replace('http://', '')}`, { serviceName: 'svc', kvPrefix });
    expect(fromList.description).toContain(`prefix /${kvPrefix}/svc/`);
    await fromList.put('k', 'from-list');
    expect(await raw.get(`/${kvPrefix}/svc/k`).string()).toBe('from-list');
    await fromList.delete('k');
    await fromList.close();
  });

  test('openStore fails fast with UNAVAILABLE, naming the endpoint, when nothing listens there', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await openStore(`etcd:127.0.0.1:${port}`, { serviceName: 'svc', requestTimeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err).toMatchObject({ code: status.UNAVAILABLE, retryable: true, message: expect.stringContaining(`127.0.0.1:${port}`) });
  });

  test('openStore names the field when the etcd_connection file is wrong', async () => {
    const file = join(dir, 'bad_connection');
    writeFileSync(file, JSON.stringify({ root_prefix: 'x', password: 'hunter2', userid: 'u' }));
    const err = await openStore(`etcd:${file}`, { serviceName: 'svc' }).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining('endpoints is required') });
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).not.toContain('hunter2');
  });
});
