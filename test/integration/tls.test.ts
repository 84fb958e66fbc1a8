import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { ChannelCredentials, Metadata, ServiceError, credentials, status } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient, ModelInferResponse } from '../../proto/gen/grpc_predict_v2';
import { ModelMeshClient, ModelStatusInfo, ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { runCli } from '../harness/cli';
import { bytesRequest, outputText } from '../harness/inference';
import { MeshHandle, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { TestCert, makeTestCert } from '../harness/storage-servers';
import { waitFor } from '../harness/wait';

/**
 * TLS on the front door and REST with required client certificates: clients with the trusted certificate are served,
 * also through a TLS peer hop; clients without one, or with an untrusted one, are refused; a renewed certificate
 * written over the files is served to new connections without a restart.
 */

const group = new ProcessGroup();
const closers: Array<{ close(): void }> = [];
let base: string;
let trusted: TestCert;
let renewed: TestCert;
let stranger: TestCert;
let meshes: MeshHandle[];
/** Where mesh-0 reads its certificate; the test overwrites it to simulate a renewal. */
let mesh0Files: { cert: string; key: string };

function creds(client?: TestCert): ChannelCredentials {
  // Clients trust the current and the renewed certificate; the test certificates name 127.0.0.1, so host names are checked.
  const roots = Buffer.from(`${trusted.certPem}\n${renewed.certPem}`);
  return client ? credentials.createSsl(roots, Buffer.from(client.keyPem), Buffer.from(client.certPem)) : credentials.createSsl(roots);
}

function meshClient(mesh: MeshHandle, client?: TestCert): ModelMeshClient {
  const c = new ModelMeshClient(`127.0.0.1:${mesh.grpcPort}`, creds(client));
  closers.push(c);
  return c;
}

function inferClient(mesh: MeshHandle, client?: TestCert): GRPCInferenceServiceClient {
  const c = new GRPCInferenceServiceClient(`127.0.0.1:${mesh.grpcPort}`, creds(client));
  closers.push(c);
  return c;
}

function unary<T>(invoke: (md: Metadata, opts: { deadline: number }, cb: (err: ServiceError | null, res: T) => void) => unknown,
  headers: Record<string, string> = {}): Promise<T> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve, reject) => {
    invoke(md, { deadline: Date.now() + 20_000 }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** The certificate a fresh TLS connection to `port` is shown. */
function servedCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'], cert: trusted.certPem, key: trusted.keyPem }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'mm-tls-'));
  trusted = makeTestCert(join(base, 'trusted'));
  renewed = makeTestCert(join(base, 'renewed'));
  stranger = makeTestCert(join(base, 'stranger'));
  // The trust bundle holds the current and the next certificate, as a CA bundle would during a rotation.
  const bundle = join(base, 'trust.pem');
  writeFileSync(bundle, `${trusted.certPem}\n${renewed.certPem}`);
  const mesh0Dir = join(base, 'mesh-0');
  mkdirSync(mesh0Dir);
  mesh0Files = { cert: join(mesh0Dir, 'tls.crt'), key: join(mesh0Dir, 'tls.key') };
  copyFileSync(trusted.certPath, mesh0Files.cert);
  copyFileSync(trusted.keyPath, mesh0Files.key);

  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), uniquePrefix('tls'))}`;
  const runtimes = await Promise.all([0, 1].map((i) => startExampleRuntime(group, `runtime ${i}`)));
  const tlsEnv = (files: { cert: string; key: string }) => ({
    MM_TLS_KEY_CERT_PATH: files.cert, MM_TLS_PRIVATE_KEY_PATH: files.key, MM_TLS_CLIENT_AUTH: 'require', MM_TLS_TRUST_CERT_PATH: bundle,
  });
  meshes = await Promise.all(runtimes.map((runtime, i) => startMesh(group, {
    instanceId: `tls-${i}`,
    runtimePort: runtime.port,
    kvStore,
    rest: true,
    env: { ...tlsEnv(i === 0 ? mesh0Files : { cert: trusted.certPath, key: trusted.keyPath }), MM_SCALEUP_RPM_THRESHOLD: '1000000' },
  })));
  for (const mesh of meshes) mesh.client.close();

  const path = join(base, 'model');
  writeFileSync(path, 'secure: ');
  const admin = meshClient(meshes[0], trusted);
  await unary((md, o, cb) => admin.registerModel({ modelId: 'm', modelInfo: { type: 'example', path, key: '' }, loadNow: false, sync: false, lastUsedTime: 0 }, md, o, cb));
  const loaded = await unary<ModelStatusInfo>((md, o, cb) => admin.ensureLoaded({ modelId: 'm', sync: true, lastUsedTime: 0 }, md, o, cb), { 'mm-load-here': 'true' });
  expect(loaded.status).toBe(ModelStatus.LOADED);
}, 120_000);

afterAll(async () => {
  for (const c of closers) c.close();
  await group.stopAll();
  if (base) rmSync(base, { recursive: true, force: true });
});

test('a client with the trusted certificate is served, through a TLS hop between instances too', async () => {
  const viaPeer = inferClient(meshes[1], trusted);
  // mesh-1 holds no copy: it forwards to mesh-0 over TLS, presenting its own certificate.
  const answer = await waitFor('the call through the peer', () => unary<ModelInferResponse>((md, o, cb) => viaPeer.modelInfer(bytesRequest('x'), md, o, cb),
    { 'mm-model-id': 'm' }), { timeoutMs: 20_000 });
  expect(outputText(answer)).toBe('secure: x');
});

test('a client without a certificate, or with an untrusted one, is refused', async () => {
  for (const client of [undefined, stranger]) {
    const c = inferClient(meshes[0], client);
    const err = await unary<ModelInferResponse>((md, o, cb) => c.modelInfer(bytesRequest('x'), md, o, cb), { 'mm-model-id': 'm' })
      .then(() => undefined, (e: ServiceError) => e);
    expect(err?.code).toBe(status.UNAVAILABLE);
  }
});

test('REST is served over HTTPS with the same client-certificate rule', async () => {
  const post = (client?: TestCert) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: meshes[0].restPort,
      path: '/v2/models/m/infer',
      method: 'POST',
      ca: trusted.certPem,
      ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
      headers: { 'content-type': 'application/json' },
    }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: ['y'] }] }));
  });
  const ok = await post(trusted);
  expect(ok.status).toBe(200);
  expect(JSON.parse(ok.body)).toMatchObject({ outputs: [{ name: 'output', data: ['secure: y'] }] });
  await expect(post()).rejects.toThrow();
});

test('modelmesh status talks TLS with a client certificate', async () => {
  const ok = await runCli('status', '--mesh', `127.0.0.1:${meshes[1].grpcPort}`, '--json', '--tls-ca', join(base, 'trust.pem'),
    '--tls-cert', trusted.certPath, '--tls-key', trusted.keyPath);
  expect(ok.code).toBe(0);
  expect((JSON.parse(ok.out) as { instances: unknown[] }).instances).toHaveLength(2);
  const refused = await runCli('status', '--mesh', `127.0.0.1:${meshes[1].grpcPort}`, '--tls-ca', join(base, 'trust.pem'));
  expect(refused.code).toBe(1);
});

test('a renewed certificate written over the files is served to new connections', async () => {
  expect(await servedCertificate(meshes[0].grpcPort)).toBe(fingerprint(trusted.certPem));
  writeFileSync(mesh0Files.key, readFileSync(renewed.keyPath));
  writeFileSync(mesh0Files.cert, readFileSync(renewed.certPath));
  await waitFor('mesh-0 to serve the renewed certificate', async () => (await servedCertificate(meshes[0].grpcPort)) === fingerprint(renewed.certPem),
    { timeoutMs: 30_000, intervalMs: 500 });
  expect(meshes[0].process.log).toContain('TLS certificate reloaded');
  // Calls keep working with the renewed certificate, which the bundle trusts.
  const c = inferClient(meshes[0], trusted);
  expect(outputText(await unary<ModelInferResponse>((md, o, cb) => c.modelInfer(bytesRequest('z'), md, o, cb), { 'mm-model-id': 'm' }))).toBe('secure: z');
}, 60_000);
