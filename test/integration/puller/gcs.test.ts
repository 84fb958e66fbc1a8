import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { type PullerFixture, expectPullError, pullerFixture } from './helpers';
import { type FakeGcs, startFakeGcs } from '../../harness/storage-servers';

/**
 * The puller's `gcs` type through the real @google-cloud/storage client against a FAKE GCS: no GCS emulator runs here
 * (Google's fake-gcs-server is a Go program, and npm has no GCS server), so `startFakeGcs` in the test harness is a
 * small node server implementing only the JSON API calls this client makes to list (with page tokens) and download
 * objects, with GCS-shaped errors, and verifying the service account's self-signed RS256 JWTs on private buckets.
 * It shows the client is driven correctly and errors are mapped; it is not evidence of behaviour against Google's
 * service.
 */

const pem = (type: 'private' | 'public', key: { export(o: { type: 'pkcs8' | 'spki'; format: 'pem' }): string | Buffer }) =>
  key.export({ type: type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }).toString();
const account = generateKeyPairSync('rsa', { modulusLength: 2048 });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
const email = 'puller@mm-test.iam.gserviceaccount.com';

let gcs: FakeGcs;
let fx: PullerFixture;

beforeAll(async () => {
  gcs = await startFakeGcs({ pageSize: 2 });
  gcs.createBucket('public-models', { public: true });
  gcs.createBucket('private-models', { serviceAccount: { email, publicKeyPem: pem('public', account.publicKey) } });
  gcs.put('public-models', 'iris/model.onnx', 'iris-onnx');
  for (const name of ['a.bin', 'b.bin', 'c.bin', 'sub/d.bin', 'sub/e.bin']) gcs.put('public-models', `resnet/${name}`, `resnet-${name}`);
  gcs.put('public-models', 'resnet50/x.bin', 'not part of resnet');
  gcs.put('private-models', 'secret/model.onnx', 'private-onnx');
});

afterAll(async () => {
  await gcs?.stop();
});

beforeEach(() => {
  fx = pullerFixture();
  fx.setKey('gcspublic', { type: 'gcs', bucket: 'public-models', endpoint_url: gcs.endpoint });
  fx.setKey('gcsprivate', {
    type: 'gcs',
    bucket: 'private-models',
    endpoint_url: gcs.endpoint,
    client_email: email,
    private_key: pem('private', account.privateKey),
  });
});

afterEach(() => fx.cleanup());

test('pulls an object and a folder prefix across several list pages from a public bucket (anonymous)', async () => {
  const file = await fx.puller.pull('g-1', 'iris/model.onnx', JSON.stringify({ storage_key: 'gcspublic' }));
  expect(file.localPath).toBe(join(fx.rootModelDir, 'g-1', 'model.onnx'));
  expect(fx.read('g-1/model.onnx')).toBe('iris-onnx');

  const folder = await fx.puller.pull('g-2', 'resnet', JSON.stringify({ storage_key: 'gcspublic' }));
  expect(folder.localPath).toBe(join(fx.rootModelDir, 'g-2', 'resnet'));
  expect(fx.listRoot().filter((p) => p.startsWith('g-2/'))).toEqual(['g-2/resnet', 'g-2/resnet/a.bin', 'g-2/resnet/b.bin',
    'g-2/resnet/c.bin', 'g-2/resnet/sub', 'g-2/resnet/sub/d.bin', 'g-2/resnet/sub/e.bin']);
  expect(fx.read('g-2/resnet/sub/e.bin')).toBe('resnet-sub/e.bin');
});

test('authenticates with the service account of the storage key', async () => {
  await fx.puller.pull('g-3', 'secret/model.onnx', JSON.stringify({ storage_key: 'gcsprivate' }));
  expect(fx.read('g-3/model.onnx')).toBe('private-onnx');
});

test('a gs:// model path names the bucket and picks default_gcs', async () => {
  fx.setKey('default_gcs', { type: 'gcs', bucket: 'elsewhere', endpoint_url: gcs.endpoint });
  const result = await fx.puller.pull('g-4', 'gs://public-models/iris/model.onnx', '');
  expect(result.storageKey).toBe('default_gcs');
  expect(fx.read('g-4/model.onnx')).toBe('iris-onnx');
});

test('a key the bucket does not accept fails with PERMISSION_DENIED, without the private key', async () => {
  const wrongKey = pem('private', stranger.privateKey);
  fx.setKey('gcsbad', { type: 'gcs', bucket: 'private-models', endpoint_url: gcs.endpoint, client_email: email, private_key: wrongKey });
  const err = await expectPullError(fx.puller.pull('bad-1', 'secret/model.onnx', JSON.stringify({ storage_key: 'gcsbad' })),
    'unauthorized', ["storage key 'gcsbad'", 'gs://private-models/secret/model.onnx'], [wrongKey, ...wrongKey.split('\n').slice(1, -2)]);
  expect(err.code).toBe(status.PERMISSION_DENIED);

  // No credentials at all: the private bucket refuses too.
  await expectPullError(fx.puller.pull('bad-2', 'secret/model.onnx', JSON.stringify({ storage_key: 'gcspublic', storage_params: { bucket: 'private-models' } })),
    'unauthorized', ["storage key 'gcspublic'", 'gs://private-models/secret/model.onnx']);
  expect(fx.listRoot()).toEqual([]);
});

test('a missing object or bucket fails with NOT_FOUND naming key and object', async () => {
  await expectPullError(fx.puller.pull('nf-1', 'nope/model.onnx', JSON.stringify({ storage_key: 'gcsprivate' })),
    'not-found', ["storage key 'gcsprivate'", 'gs://private-models/nope/model.onnx'], [pem('private', account.privateKey)]);
  await expectPullError(fx.puller.pull('nf-2', 'iris/model.onnx', JSON.stringify({ storage_key: 'gcspublic', storage_params: { bucket: 'no-bucket' } })),
    'not-found', ["storage key 'gcspublic'", 'gs://no-bucket/iris/model.onnx']);
  expect(fx.listRoot()).toEqual([]);
});
