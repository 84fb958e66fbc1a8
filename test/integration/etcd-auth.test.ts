import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdServer, enableEtcdAuth, startEtcd } from '../harness/etcd';
import { inferenceClient, inferModel } from '../harness/inference';
import { ExampleRuntimeHandle, MeshHandle, callMesh, spawnMesh, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ProcessGroup } from '../harness/processes';
import { TestCert, makeTestCert } from '../harness/storage-servers';

/**
 * `modelmesh serve` against a real etcd that demands client certificates, and one that demands a user and password:
 * with the right credentials in the etcd_connection JSON (inline PEM and `*_file` forms) a mesh serves an inference;
 * with a wrong or missing certificate, or a wrong or missing password, it exits non-zero within seconds, with one line
 * that names what is wrong and never the password or the key.
 */

const group = new ProcessGroup();
const closers: Array<{ close(): void }> = [];
let dir: string;
/** etcd's server certificate (self-signed, names 127.0.0.1): the mesh trusts it as its CA. */
let etcdCert: TestCert;
/** The only client certificate the TLS etcd trusts. */
let client: TestCert;
/** A client certificate etcd has never seen. */
let stranger: TestCert;
let tlsEtcd: EtcdServer;
let tlsPort: number;
let authEtcd: EtcdServer;
let runtime: ExampleRuntimeHandle;
/** A model server for the meshes that must fail: they never get as far as using it. */
let spareRuntime: ExampleRuntimeHandle;

const USER = 'mesh-user';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const AUTH_PREFIX = '/auth-test/';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mm-etcd-auth-'));
  [etcdCert, client, stranger] = ['etcd', 'client', 'stranger'].map((name) => makeTestCert(join(dir, name)));

  // Plain http stays on the harness's port for its health check; the mesh uses the TLS port, which wants a client cert.
  const clientPort = await freePort();
  tlsPort = await freePort();
  tlsEtcd = await startEtcd({
    clientPort,
    extraArgs: [
      '--listen-client-urls', `http://127.0.0.1:${clientPort},https://127.0.0.1:${tlsPort}`,
      '--cert-file', etcdCert.certPath, '--key-file', etcdCert.keyPath,
      '--trusted-ca-file', client.certPath, '--client-cert-auth',
    ],
  });

  authEtcd = await startEtcd();
  await enableEtcdAuth(authEtcd.endpoint, { name: USER, password: PASSWORD, prefix: AUTH_PREFIX }, `root-${PASSWORD}`);
  [runtime, spareRuntime] = [await startExampleRuntime(group, 'runtime'), await startExampleRuntime(group, 'spare runtime')];
}, 120_000);

afterAll(async () => {
  for (const c of closers) c.close();
  await group.stopAll();
  await tlsEtcd?.stop();
  await authEtcd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let files = 0;
/** Writes an etcd_connection JSON (as the secret mount shows it) and returns the KV_STORE value naming it. */
function kvStore(connection: Record<string, unknown>): string {
  const file = join(dir, `etcd_connection-${++files}.json`);
  writeFileSync(file, JSON.stringify(connection));
  return `etcd:${file}`;
}

const tlsConnection = (fields: Record<string, unknown> = {}) => kvStore({
  endpoints: `https://127.0.0.1:${tlsPort}`,
  root_prefix: '/mtls-test',
  certificate: etcdCert.certPem,
  client_certificate: client.certPem,
  client_key: client.keyPem,
  ...fields,
});

const authConnection = (fields: Record<string, unknown> = {}) => kvStore({
  endpoints: authEtcd.endpoint,
  root_prefix: AUTH_PREFIX,
  userid: USER,
  password: PASSWORD,
  ...fields,
});

/** Registers an example model (its text is `text`) through `mesh` and infers through it. */
async function serveModel(mesh: MeshHandle, modelId: string, text: string): Promise<string> {
  const path = join(dir, `${modelId}.txt`);
  writeFileSync(path, text);
  await callMesh(mesh.client, 'registerModel', { modelId, modelInfo: { type: 'example', path, key: '' }, loadNow: true, sync: true });
  const grpc = inferenceClient(mesh.grpcPort);
  closers.push(grpc);
  return inferModel(grpc, modelId, '-in');
}

function startMeshOn(instanceId: string, kv: string, runtimePort = runtime.port): Promise<MeshHandle> {
  return startMesh(group, { instanceId, runtimePort, kvStore: kv }).then((mesh) => {
    closers.push(mesh.client);
    return mesh;
  });
}

interface FailedStart {
  readonly code: number | null;
  /** The error the mesh logged as the reason it did not start. */
  readonly reason: string;
  /** From "model server ready" (the mesh then opens the store) to the failure, by the mesh's own log times. */
  readonly storeMs: number;
  readonly log: string;
}

/** Starts a mesh that must not start; resolves once it has exited, with its exit code and the reason it logged. */
async function failedStart(instanceId: string, kv: string): Promise<FailedStart> {
  const { process: proc } = await spawnMesh(group, { instanceId, runtimePort: spareRuntime.port, kvStore: kv });
  const code = await proc.waitForExit();
  const lines = proc.log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; time: string; err?: string });
  const ready = lines.find((l) => l.msg === 'model server ready');
  const failed = lines.find((l) => l.msg === 'start-up failed');
  if (!ready || !failed) throw new Error(`mesh ${instanceId} did not fail where expected:\n${proc.log}`);
  return { code, reason: failed.err ?? '', storeMs: Date.parse(failed.time) - Date.parse(ready.time), log: proc.log };
}

/** What no output may ever contain: the password, and any line of a private key. */
function expectNoSecrets(text: string): void {
  expect(text).not.toContain(PASSWORD);
  for (const key of [client.keyPem, stranger.keyPem]) {
    for (const line of key.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) expect(text).not.toContain(line);
  }
}

test('mTLS: meshes with inline PEM and with *_file certificates share one etcd that requires client certificates', async () => {
  const inline = await startMeshOn('mtls-inline', tlsConnection());
  // The *_file form, relative to the JSON's folder, as the secret mount has it.
  const fileForm = await startMeshOn('mtls-files', tlsConnection({
    certificate: undefined,
    client_certificate: undefined,
    client_key: undefined,
    certificate_file: 'etcd/cert.pem',
    client_certificate_file: 'client/cert.pem',
    client_key_file: join(dir, 'client', 'key.pem'),
  }), (await startExampleRuntime(group, 'runtime 2')).port);
  expect(await serveModel(inline, 'mtls-model', 'mtls:')).toBe('mtls:-in');
  // The second mesh sees the model registered through the first: both really use the same etcd.
  expect(await inferModel(inferenceClient(fileForm.grpcPort), 'mtls-model', '-2')).toBe('mtls:-2');
  expectNoSecrets(inline.process.log + fileForm.process.log);
}, 120_000);

test('user and password: a mesh whose user may touch only its prefix registers and serves a model', async () => {
  const mesh = await startMeshOn('auth-ok', authConnection(), (await startExampleRuntime(group, 'runtime 3')).port);
  expect(await serveModel(mesh, 'auth-model', 'auth:')).toBe('auth:-in');
  expectNoSecrets(mesh.process.log);
}, 120_000);

test('mTLS with a client certificate etcd does not trust: the mesh exits at start saying etcd rejected it', async () => {
  const failure = await failedStart('mtls-stranger', tlsConnection({
    client_certificate: undefined,
    client_key: undefined,
    client_certificate_file: 'stranger/cert.pem',
    client_key_file: 'stranger/key.pem',
  }));
  expect(failure.code).toBe(1);
  expect(failure.reason).toBe(`etcd at https://127.0.0.1:${tlsPort} rejected the client certificate (connect): TLS alert "bad certificate"; `
    + 'check that etcd\'s --trusted-ca-file signs client_certificate[_file]');
  expect(failure.storeMs).toBeLessThan(3_000);
  expectNoSecrets(failure.log);
}, 90_000);

test('mTLS without a client certificate: the mesh exits at start saying etcd requires one', async () => {
  const failure = await failedStart('mtls-none', tlsConnection({ client_certificate: undefined, client_key: undefined }));
  expect(failure.code).toBe(1);
  expect(failure.reason).toMatch(new RegExp(`^etcd at https://127\\.0\\.0\\.1:${tlsPort} requires a client certificate \\(connect\\)`));
  expect(failure.storeMs).toBeLessThan(3_000);
}, 90_000);

test('a wrong password: the mesh exits at start naming the user, never the password', async () => {
  const wrong = `wrong-${PASSWORD}`;
  const failure = await failedStart('auth-bad-password', authConnection({ password: wrong }));
  expect(failure.code).toBe(1);
  expect(failure.reason).toBe(`etcd at ${authEtcd.endpoint} authentication failed for user '${USER}' (connect): `
    + 'authentication failed, invalid user ID or password; check userid and password in etcd_connection');
  expect(failure.storeMs).toBeLessThan(3_000);
  expect(failure.log).not.toContain(wrong);
  expectNoSecrets(failure.log);
}, 90_000);

test('no user and password against an etcd with auth on: the mesh exits at start saying credentials are needed', async () => {
  const failure = await failedStart('auth-none', authConnection({ userid: undefined, password: undefined }));
  expect(failure.code).toBe(1);
  expect(failure.reason).toMatch(new RegExp(`^etcd at ${authEtcd.endpoint} requires a user and password`));
  expect(failure.storeMs).toBeLessThan(3_000);
}, 90_000);

test('a user without permission on the root prefix: the mesh exits at start naming the user', async () => {
  const failure = await failedStart('auth-elsewhere', authConnection({ root_prefix: '/not-granted/' }));
  expect(failure.code).toBe(1);
  expect(failure.reason).toMatch(new RegExp(`^etcd at ${authEtcd.endpoint} denied connect to user '${USER}': permission denied`));
  expect(failure.storeMs).toBeLessThan(3_000);
  expectNoSecrets(failure.log);
}, 90_000);
