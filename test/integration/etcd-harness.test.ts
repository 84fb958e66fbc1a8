import { Etcd3, IKeyValue } from 'etcd3';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { waitFor } from '../harness/wait';

/** The harness's etcd is a real server: writes, prefix watches and lease expiry behave as in production. */
describe('shared test etcd', () => {
  let client: Etcd3;
  beforeAll(() => { client = new Etcd3({ hosts: sharedEtcdEndpoint() }); });
  afterAll(() => client.close());

  test('put and get', async () => {
    const prefix = uniquePrefix('put');
    await client.put(`${prefix}a`).value('1');
    expect(await client.get(`${prefix}a`).string()).toBe('1');
  });

  test('a prefix watch sees puts and deletes under the prefix only', async () => {
    const prefix = uniquePrefix('watch');
    const events: string[] = [];
    const watcher = await client.watch().prefix(prefix).create();
    try {
      watcher.on('put', (kv: IKeyValue) => events.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
      watcher.on('delete', (kv: IKeyValue) => events.push(`delete ${kv.key.toString()}`));
      await client.put(`${prefix}x`).value('1');
      await client.put(`/elsewhere${prefix}y`).value('2');
      await client.delete().key(`${prefix}x`);
      await waitFor('two watch events', () => events.length >= 2);
      expect(events).toEqual([`put ${prefix}x=1`, `delete ${prefix}x`]);
    } finally {
      await watcher.cancel();
    }
  });

  test('a key bound to a lease disappears when the lease expires', async () => {
    const prefix = uniquePrefix('lease');
    const lease = client.lease(1, { autoKeepAlive: false });
    await lease.put(`${prefix}member`).value('alive');
    expect(await client.get(`${prefix}member`).string()).toBe('alive');
    const watcher = await client.watch().key(`${prefix}member`).create();
    try {
      const deleted = new Promise<void>((resolve) => watcher.once('delete', () => resolve()));
      await deleted;
      expect(await client.get(`${prefix}member`).string()).toBeNull();
    } finally {
      await watcher.cancel();
      lease.release();
    }
  });
});
