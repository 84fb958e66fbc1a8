import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { type PullerFixture, expectPullError, pullerFixture } from './helpers';
import { freePort } from '../../harness/ports';
import { type FileServer, type TestCert, makeTestCert, startFileServer } from '../../harness/storage-servers';

/** The puller's `http` type against node HTTP and HTTPS servers on loopback. */

const TOKEN = 'Bearer tok-0123456789-secret';
const FILES = { '/repo/models/fraud/model.onnx': 'http-fraud', '/repo/models/iris.onnx': 'http-iris' };

let plain: FileServer;
let secure: FileServer;
let tlsDir: string;
let cert: TestCert;
let fx: PullerFixture;

beforeAll(async () => {
  tlsDir = mkdtempSync(join(tmpdir(), 'mm-httptls-'));
  cert = makeTestCert(tlsDir);
  plain = await startFileServer(FILES, { requiredHeaders: { 'authorization': TOKEN, 'x-tenant': 'acme' } });
  secure = await startFileServer(FILES, { cert });
});

afterAll(async () => {
  await plain?.stop();
  await secure?.stop();
  rmSync(tlsDir, { recursive: true, force: true });
});

beforeEach(() => {
  fx = pullerFixture();
  fx.setKey('web', { type: 'http', url: `${plain.url}/repo`, headers: { 'Authorization': TOKEN, 'X-Tenant': ['acme'] } });
});

afterEach(() => fx.cleanup());

test('GETs <url>/<path> with the entry\'s headers into <root>/<modelId>/<basename>', async () => {
  const result = await fx.puller.pull('h-1', 'models/fraud/model.onnx', JSON.stringify({ storage_key: 'web', model_type: { name: 'onnx' } }));
  expect(result.localPath).toBe(join(fx.rootModelDir, 'h-1', 'model.onnx'));
  expect(fx.read('h-1/model.onnx')).toBe('http-fraud');
  expect(JSON.parse(result.modelKey)).toEqual({ model_type: { name: 'onnx' }, disk_size_bytes: 10 });
  const seen = plain.requests[plain.requests.length - 1];
  expect(seen).toMatchObject({ url: '/repo/models/fraud/model.onnx', headers: { 'authorization': TOKEN, 'x-tenant': 'acme' } });
});

test('a storage_params override replaces the url; the url\'s query is kept', async () => {
  fx.setKey('web', { type: 'http', url: 'http://127.0.0.1:1/unused', headers: { 'Authorization': TOKEN, 'X-Tenant': 'acme' } });
  await fx.puller.pull('h-2', 'models/iris.onnx', JSON.stringify({ storage_key: 'web', storage_params: { url: `${plain.url}/repo?v=2` } }));
  expect(fx.read('h-2/iris.onnx')).toBe('http-iris');
  expect(plain.requests[plain.requests.length - 1].url).toBe('/repo/models/iris.onnx?v=2');
});

test('an http(s) model path becomes url + path; the storage key still supplies the headers', async () => {
  const result = await fx.puller.pull('h-3', `${plain.url}/repo/models/iris.onnx`, JSON.stringify({ storage_key: 'web' }));
  expect(result.localPath).toBe(join(fx.rootModelDir, 'h-3', 'iris.onnx'));
  expect(fx.read('h-3/iris.onnx')).toBe('http-iris');
});

test('refused headers fail with PERMISSION_DENIED naming key and URL, without header values or the URL\'s query', async () => {
  const wrong = 'Bearer wrong-token-abcdef';
  const sig = 'sig-value-should-stay-hidden';
  fx.setKey('webbad', { type: 'http', url: `${plain.url}/repo?sig=${sig}`, headers: { Authorization: wrong } });
  const err = await expectPullError(fx.puller.pull('bad-1', 'models/iris.onnx', JSON.stringify({ storage_key: 'webbad' })),
    'unauthorized', ["storage key 'webbad'", `${plain.url}/repo/models/iris.onnx`, 'HTTP 401'], [wrong, sig, TOKEN]);
  expect(err.code).toBe(status.PERMISSION_DENIED);
  expect(fx.listRoot()).toEqual([]);
});

test('a missing file fails with NOT_FOUND naming key and URL', async () => {
  await expectPullError(fx.puller.pull('nf-1', 'models/nope.onnx', JSON.stringify({ storage_key: 'web' })),
    'not-found', ["storage key 'web'", `${plain.url}/repo/models/nope.onnx`, 'HTTP 404'], [TOKEN]);
  expect(fx.listRoot()).toEqual([]);
});

test('HTTPS: a custom CA in "certificate" is trusted; without it the certificate is refused', async () => {
  fx.setKey('webtls', { type: 'http', url: `${secure.url}/repo`, certificate: cert.certPem });
  await fx.puller.pull('tls-1', 'models/iris.onnx', JSON.stringify({ storage_key: 'webtls' }));
  expect(fx.read('tls-1/iris.onnx')).toBe('http-iris');

  fx.setKey('webtls', { type: 'http', url: `${secure.url}/repo` });
  await expectPullError(fx.puller.pull('tls-2', 'models/iris.onnx', JSON.stringify({ storage_key: 'webtls' })),
    'tls', ["storage key 'webtls'", `${secure.url}/repo/models/iris.onnx`]);
});

test('an unreachable server fails with UNAVAILABLE naming key and URL', async () => {
  const port = await freePort();
  fx.setKey('webdown', { type: 'http', url: `http://127.0.0.1:${port}/repo` });
  const err = await expectPullError(fx.puller.pull('down-1', 'models/iris.onnx', JSON.stringify({ storage_key: 'webdown' })),
    'unreachable', ["storage key 'webdown'", `http://127.0.0.1:${port}/repo/models/iris.onnx`]);
  expect(err.retryable).toBe(true);
});
