import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { type PullerFixture, expectPullError, pullerFixture } from './helpers';

/**
 * What the puller does whatever the storage type: storage key resolution and its errors, validation of ids and paths,
 * clean-up, re-reading rotated entries, deadlines. A local folder (type pvc) and a node HTTP server are the storage.
 */

let fx: PullerFixture;

beforeEach(() => {
  fx = pullerFixture();
  mkdirSync(join(fx.pvcMountsDir, 'claim-a', 'm'), { recursive: true });
  mkdirSync(join(fx.pvcMountsDir, 'claim-b', 'm'), { recursive: true });
  writeFileSync(join(fx.pvcMountsDir, 'claim-a', 'm', 'model.bin'), 'from-a');
  writeFileSync(join(fx.pvcMountsDir, 'claim-b', 'm', 'model.bin'), 'from-b');
  fx.setKey('alpha', { type: 'pvc', name: 'claim-a' });
  fx.setKey('beta', { type: 'pvc', name: 'claim-b' });
});

afterEach(() => fx.cleanup());

test('a storage key missing from storage-config is NOT_FOUND and lists the keys that exist', async () => {
  // The secret mount's own entries (`..data`, dot files) are not keys.
  mkdirSync(join(fx.storageConfigDir, '..data'));
  const err = await expectPullError(fx.puller.pull('k-1', 'm/model.bin', JSON.stringify({ storage_key: 'gamma' })),
    'storage-key-not-found', []);
  expect(err.message).toBe("storage key 'gamma' not found in storage-config; available: alpha, beta");
  expect(err.code).toBe(status.NOT_FOUND);
  expect(err.storageKey).toBe('gamma');
});

test('falls back to default, then to default_<type> when storage_params name a type', async () => {
  fx.setKey('default', { type: 'pvc', name: 'claim-a' });
  fx.setKey('default_pvc', { type: 'pvc', name: 'claim-b' });
  expect((await fx.puller.pull('d-1', 'm/model.bin', '')).storageKey).toBe('default');
  expect(fx.read('d-1/model.bin')).toBe('from-a');
  expect((await fx.puller.pull('d-2', 'm/model.bin', JSON.stringify({ storage_params: { type: 'pvc' } }))).storageKey).toBe('default_pvc');
  expect(fx.read('d-2/model.bin')).toBe('from-b');
});

test('storage_params override fields of the entry (dot paths reach nested objects; only strings)', async () => {
  await fx.puller.pull('o-1', 'm/model.bin', JSON.stringify({ storage_key: 'alpha', storage_params: { name: 'claim-b' } }));
  expect(fx.read('o-1/model.bin')).toBe('from-b');
  fx.setKey('numeric', { type: 'pvc', name: 'claim-a', retries: 3 });
  await expectPullError(fx.puller.pull('o-2', 'm/model.bin', JSON.stringify({ storage_key: 'numeric', storage_params: { retries: '5' } })),
    'invalid-request', ["storage_params 'retries'", 'only string fields']);
});

test('entries are re-read on every pull, so a rotated secret applies to the next pull', async () => {
  await fx.puller.pull('r-1', 'm/model.bin', JSON.stringify({ storage_key: 'alpha' }));
  expect(fx.read('r-1/model.bin')).toBe('from-a');
  fx.setKey('alpha', { type: 'pvc', name: 'claim-b' });
  await fx.puller.pull('r-2', 'm/model.bin', JSON.stringify({ storage_key: 'alpha' }));
  expect(fx.read('r-2/model.bin')).toBe('from-b');
});

test('bad entries and keys are reported without quoting the entry (it holds secrets)', async () => {
  writeFileSync(join(fx.storageConfigDir, 'broken'), '{"type":"s3","secret_access_key":"super-secret-in-broken-json",');
  await expectPullError(fx.puller.pull('b-1', 'm', JSON.stringify({ storage_key: 'broken' })),
    'invalid-storage-config', ["storage key 'broken'", 'not valid JSON'], ['super-secret-in-broken-json']);
  fx.setKey('typeless', { name: 'claim-a' });
  await expectPullError(fx.puller.pull('b-2', 'm', JSON.stringify({ storage_key: 'typeless' })), 'invalid-request', ["storage key 'typeless'", '"type"']);
  fx.setKey('ftp', { type: 'ftp', password: 'ftp-secret-password' });
  await expectPullError(fx.puller.pull('b-3', 'm', JSON.stringify({ storage_key: 'ftp' })),
    'invalid-request', ["unsupported storage type 'ftp'"], ['ftp-secret-password']);
  await expectPullError(fx.puller.pull('b-3b', 'm', JSON.stringify({ storage_params: { type: 'constructor' } })),
    'invalid-request', ["unsupported storage type 'constructor'"]);
  await expectPullError(fx.puller.pull('b-4', 'm', ''), 'invalid-request', ['no storage type']);
  await expectPullError(fx.puller.pull('b-5', 'm', '{not json'), 'invalid-request', ['model key is not valid JSON']);
  await expectPullError(fx.puller.pull('b-6', 'ftp://host/m', ''), 'invalid-request', ["unsupported scheme 'ftp'"]);
  expect(fx.listRoot()).toEqual([]);
});

test('ids, paths and keys that would escape their folders are refused before anything is written', async () => {
  const key = JSON.stringify({ storage_key: 'alpha' });
  for (const id of ['../escape', '..', '.', 'a/b', 'a\\b', 'x\0y', '', 'x'.repeat(256)]) {
    await expectPullError(fx.puller.pull(id, 'm/model.bin', key), 'invalid-request', ['model id']);
    await expectPullError(fx.puller.remove(id), 'invalid-request', ['model id']);
  }
  await expectPullError(fx.puller.pull('ok', 'm/../../../etc/passwd', key), 'invalid-request', ["model path 'm/../../../etc/passwd' contains '..'"]);
  await expectPullError(fx.puller.pull('ok', 'm/model\0.bin', key), 'invalid-request', ['model path']);
  await expectPullError(fx.puller.pull('ok', 'm/model.bin', JSON.stringify({ storage_key: 'alpha', schema_path: '../s.json' })),
    'invalid-request', ['schema path']);
  await expectPullError(fx.puller.pull('ok', 'm/model.bin', JSON.stringify({ storage_key: '../models/alpha' })),
    'invalid-request', ["storage key '../models/alpha' is not a valid storage-config key name"]);
  expect(fx.listRoot()).toEqual([]);
  // Nothing appeared beside the model root either.
  expect(readdirSync(dirname(fx.rootModelDir)).sort()).toEqual(['models', 'pvc_mounts', 'storage-config']);
});

test('remove deletes the model folder; removing an absent model is fine; a re-pull replaces the files', async () => {
  await fx.puller.pull('rm-1', 'm/model.bin', JSON.stringify({ storage_key: 'alpha', model_type: { name: 'x' } }));
  await fx.puller.pull('rm-1', 'm/model.bin', JSON.stringify({ storage_key: 'beta' }));
  expect(fx.read('rm-1/model.bin')).toBe('from-b');
  expect(fx.listRoot()).toEqual(['rm-1', 'rm-1/model.bin']);
  await fx.puller.remove('rm-1');
  await fx.puller.remove('rm-1');
  await fx.puller.remove('never-pulled');
  expect(fx.listRoot()).toEqual([]);
});

test('pull and remove of one model run in order', async () => {
  const pulled = fx.puller.pull('seq-1', 'm/model.bin', JSON.stringify({ storage_key: 'alpha' }));
  const removed = fx.puller.remove('seq-1');
  await Promise.all([pulled, removed]);
  expect(fx.listRoot()).toEqual([]);
});

describe('deadlines', () => {
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    // Answers headers and the first bytes, then stalls: the pull must give up at its deadline and clean up.
    server = http.createServer((_req, res) => { res.writeHead(200); res.write('partial'); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('a pull past timeoutMs fails with DEADLINE_EXCEEDED and leaves nothing; a cancelled one too', async () => {
    fx.setKey('slow', { type: 'http', url });
    const err = await expectPullError(fx.withOptions({ timeoutMs: 300 }).pull('slow-1', 'model.bin', JSON.stringify({ storage_key: 'slow' })),
      'aborted', ["storage key 'slow'", 'timed out after 300 ms']);
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);

    const cancel = new AbortController();
    const pending = fx.puller.pull('slow-2', 'model.bin', JSON.stringify({ storage_key: 'slow' }), { signal: cancel.signal });
    setTimeout(() => cancel.abort(), 100);
    await expectPullError(pending, 'aborted', ['was cancelled']);
    expect(fx.listRoot()).toEqual([]);
  });
});
