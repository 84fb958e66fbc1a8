import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { type PullerFixture, expectPullError, pullerFixture } from './helpers';
import { freePort } from '../../harness/ports';
import { type S3Emulator, type TestCert, makeTestCert, startS3rver } from '../../harness/storage-servers';

/** The puller's `s3` type against s3rver, an S3 emulator from npm, on loopback (plain HTTP and HTTPS). */

let s3: S3Emulator;
let fx: PullerFixture;

const s3Entry = (extra: Record<string, unknown> = {}) => ({
  type: 's3',
  endpoint_url: s3.endpoint,
  region: 'us-east-1',
  access_key_id: s3.accessKeyId,
  secret_access_key: s3.secretAccessKey,
  bucket: 'models',
  ...extra,
});

beforeAll(async () => {
  s3 = await startS3rver();
  await s3.createBucket('models');
  await s3.createBucket('other');
  await s3.put('models', 'fraud/model.onnx', 'fraud-onnx');
  await s3.put('models', 'fraud/schema.json', '{"inputs":[]}');
  await s3.put('models', 'mnist/1/model.onnx', 'mnist-v1');
  await s3.put('models', 'mnist/config.pbtxt', 'name: "mnist"');
  await s3.put('models', 'mnist/empty', '');
  await s3.put('models', 'mnist2/other.txt', 'not part of mnist');
  await s3.put('other', 'fraud/model.onnx', 'other-bucket');
});

afterAll(async () => {
  await s3?.stop();
});

beforeEach(() => {
  fx = pullerFixture();
  fx.setKey('s3main', s3Entry());
});

afterEach(() => fx.cleanup());

test('pulls one object to <root>/<modelId>/<basename> and rewrites the model key as upstream does', async () => {
  const key = JSON.stringify({ storage_key: 's3main', storage_params: { bucket: 'models' }, model_type: { name: 'onnx' }, bucket: 'models' });
  const result = await fx.puller.pull('fraud-1', 'fraud/model.onnx', key);
  expect(result.localPath).toBe(join(fx.rootModelDir, 'fraud-1', 'model.onnx'));
  expect(fx.read('fraud-1/model.onnx')).toBe('fraud-onnx');
  expect(JSON.parse(result.modelKey)).toEqual({ model_type: { name: 'onnx' }, disk_size_bytes: 10 });
  expect(result).toMatchObject({ diskSizeBytes: 10, storageKey: 's3main', type: 's3' });
  expect(fx.listRoot()).toEqual(['fraud-1', 'fraud-1/model.onnx']);
});

test('an entry without keys whose default credential chain finds none reads a public bucket unsigned', async () => {
  const { access_key_id: _id, secret_access_key: _secret, ...anonymous } = s3Entry();
  fx.setKey('public', anonymous);
  // No AWS credentials anywhere in this process's view: the SDK's chain ends empty-handed, as in a pod without identity.
  const saved = { ...process.env };
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE']) delete process.env[name];
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(fx.rootModelDir, 'none');
  process.env.AWS_CONFIG_FILE = join(fx.rootModelDir, 'none');
  try {
    await fx.puller.pull('anon-1', 'mnist', JSON.stringify({ storage_key: 'public' }));
  } finally {
    process.env = saved;
  }
  expect(fx.read('anon-1/mnist/1/model.onnx')).toBe('mnist-v1');
});

test('pulls a folder prefix with its layout, skipping empty objects and look-alike prefixes', async () => {
  const result = await fx.puller.pull('mnist-1', 'mnist', JSON.stringify({ storage_key: 's3main' }));
  expect(result.localPath).toBe(join(fx.rootModelDir, 'mnist-1', 'mnist'));
  expect(fx.listRoot()).toEqual(['mnist-1', 'mnist-1/mnist', 'mnist-1/mnist/1', 'mnist-1/mnist/1/model.onnx', 'mnist-1/mnist/config.pbtxt']);
  expect(fx.read('mnist-1/mnist/1/model.onnx')).toBe('mnist-v1');
  expect(result.diskSizeBytes).toBe('mnist-v1'.length + 'name: "mnist"'.length);

  const slash = await fx.puller.pull('mnist-2', 'mnist/', JSON.stringify({ storage_key: 's3main' }));
  expect(slash.localPath).toBe(join(fx.rootModelDir, 'mnist-2', 'mnist'));
  expect(fx.read('mnist-2/mnist/config.pbtxt')).toBe('name: "mnist"');
});

test('pulls the schema beside the model and points schema_path at it', async () => {
  const result = await fx.puller.pull('fraud-s', 'fraud/model.onnx', JSON.stringify({ storage_key: 's3main', schema_path: 'fraud/schema.json' }));
  expect(JSON.parse(result.modelKey)).toEqual({ schema_path: join(fx.rootModelDir, 'fraud-s', 'schema.json'), disk_size_bytes: 10 });
  expect(fx.read('fraud-s/schema.json')).toBe('{"inputs":[]}');
});

test('storage_params override the entry; default_s3, default and default_bucket apply as upstream', async () => {
  const override = await fx.puller.pull('o-1', 'fraud/model.onnx', JSON.stringify({ storage_key: 's3main', storage_params: { bucket: 'other' } }));
  expect(fx.read('o-1/model.onnx')).toBe('other-bucket');
  expect(override.storageKey).toBe('s3main');

  // No storage_key: storage_params.type selects default_<type>.
  fx.setKey('default_s3', s3Entry({ bucket: 'other' }));
  const typed = await fx.puller.pull('d-1', 'fraud/model.onnx', JSON.stringify({ storage_params: { type: 's3' } }));
  expect(typed.storageKey).toBe('default_s3');
  expect(fx.read('d-1/model.onnx')).toBe('other-bucket');

  // No storage_key and no type: `default`, here with the deprecated default_bucket standing in for bucket.
  const { bucket: _unused, ...withoutBucket } = s3Entry();
  fx.setKey('default', { ...withoutBucket, default_bucket: 'models' });
  const plain = await fx.puller.pull('d-2', 'fraud/model.onnx', '');
  expect(plain.storageKey).toBe('default');
  expect(fx.read('d-2/model.onnx')).toBe('fraud-onnx');
});

test('an s3:// model path names the bucket; the URI wins over storage_params', async () => {
  await fx.puller.pull('uri-1', 's3://other/fraud/model.onnx', JSON.stringify({ storage_key: 's3main', storage_params: { bucket: 'models' } }));
  expect(fx.read('uri-1/model.onnx')).toBe('other-bucket');
  // Without a storage key the URI's type picks default_s3.
  fx.setKey('default_s3', s3Entry());
  await fx.puller.pull('uri-2', 's3://models/mnist/config.pbtxt', '{}');
  expect(fx.read('uri-2/config.pbtxt')).toBe('name: "mnist"');
});

test('wrong credentials fail with PERMISSION_DENIED naming key and object, never the secrets', async () => {
  // s3rver checks the access key id but does not verify SigV4 signatures, so a wrong secret alone would pass here;
  // the entry carries a wrong id and a wrong secret, and neither may appear in the error.
  const wrongId = 'AKIAWRONGKEYID000001';
  const wrongSecret = 'wrong-secret-value-0123456789';
  fx.setKey('s3bad', s3Entry({ access_key_id: wrongId, secret_access_key: wrongSecret }));
  const err = await expectPullError(fx.puller.pull('bad-1', 'fraud/model.onnx', JSON.stringify({ storage_key: 's3bad' })),
    'unauthorized', ["storage key 's3bad'", 's3://models/fraud/model.onnx'], [wrongId, wrongSecret]);
  expect(err.code).toBe(status.PERMISSION_DENIED);
  expect(fx.listRoot()).toEqual([]);
});

test('a missing object or bucket fails with NOT_FOUND naming key and object, leaving nothing behind', async () => {
  const missing = await expectPullError(fx.puller.pull('nf-1', 'nope/model.onnx', JSON.stringify({ storage_key: 's3main' })),
    'not-found', ["storage key 's3main'", 's3://models/nope/model.onnx'], [s3.secretAccessKey + '-never']);
  expect(missing.code).toBe(status.NOT_FOUND);
  await expectPullError(fx.puller.pull('nf-2', 'fraud/model.onnx', JSON.stringify({ storage_key: 's3main', storage_params: { bucket: 'nobucket' } })),
    'not-found', ["storage key 's3main'", 's3://nobucket/fraud/model.onnx']);
  expect(fx.listRoot()).toEqual([]);
});

test('an unreachable endpoint fails with UNAVAILABLE (retryable) naming key and object', async () => {
  const port = await freePort();
  fx.setKey('s3down', s3Entry({ endpoint_url: `http://127.0.0.1:${port}` }));
  const err = await expectPullError(fx.puller.pull('down-1', 'fraud/model.onnx', JSON.stringify({ storage_key: 's3down' })),
    'unreachable', ["storage key 's3down'", 's3://models/fraud/model.onnx']);
  expect(err.code).toBe(status.UNAVAILABLE);
  expect(err.retryable).toBe(true);
});

describe('over TLS', () => {
  let tlsDir: string;
  let cert: TestCert;
  let s3tls: S3Emulator;

  beforeAll(async () => {
    tlsDir = mkdtempSync(join(tmpdir(), 'mm-s3tls-'));
    cert = makeTestCert(tlsDir);
    s3tls = await startS3rver({ cert });
    await s3tls.createBucket('secure');
    await s3tls.put('secure', 'm/model.bin', 'over-tls');
  });

  afterAll(async () => {
    await s3tls?.stop();
    rmSync(tlsDir, { recursive: true, force: true });
  });

  test('trusts the endpoint through the entry\'s "certificate" and refuses it without', async () => {
    const entry = s3Entry({ endpoint_url: s3tls.endpoint, bucket: 'secure' });
    fx.setKey('s3tls', { ...entry, certificate: cert.certPem });
    await fx.puller.pull('tls-1', 'm/model.bin', JSON.stringify({ storage_key: 's3tls' }));
    expect(fx.read('tls-1/model.bin')).toBe('over-tls');

    fx.setKey('s3untrusted', entry);
    await expectPullError(fx.puller.pull('tls-2', 'm/model.bin', JSON.stringify({ storage_key: 's3untrusted' })),
      'tls', ["storage key 's3untrusted'", 's3://secure/m/model.bin']);
  });
});
