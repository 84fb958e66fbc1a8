import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceError } from '@grpc/grpc-js';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { EtcdServer, enableEtcdAuth, startEtcd } from '../harness/etcd';
import { bytesRequest, infer, inferenceClient } from '../harness/inference';
import { ExampleRuntimeHandle, MeshHandle, callMesh, spawnMesh, spawnModelmesh, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ManagedProcess, ProcessGroup } from '../harness/processes';
import {
  AzureEmulator, FakeGcs, FileServer, S3Emulator, TestCert, makeTestCert, startAzurite, startFakeGcs, startFileServer, startS3rver,
} from '../harness/storage-servers';
import { httpGet, httpPostJson } from '../harness/wait';

/**
 * Every error path that handles a secret, driven for real, with everything anyone could read kept: all output of every
 * process this file starts (meshes at debug level, model servers, operator commands), every gRPC status and message,
 * every HTTP body (REST, /metrics, /ready). At the end none of the secrets — random values, so a hit is never chance —
 * may appear anywhere in it. Paths: storage-config entries of each type with credentials that fail (unreachable
 * endpoint, missing bucket, wrong key), a wrong etcd password, key files and etcd keys with bad content, operator
 * commands that fail, load failures as getModelStatus, inference and REST report them.
 */

const group = new ProcessGroup();
const closers: Array<{ close(): void }> = [];
/** Everything returned or printed, with where it came from. */
const seen: Array<{ from: string; text: string }> = [];
const secrets = new Map<string, string>();

/** A random value registered as a secret under `name`; hex, so no encoding step can disguise it. */
function secret(name: string, prefix = ''): string {
  const value = `${prefix}${randomBytes(18).toString('hex')}`;
  secrets.set(name, value);
  return value;
}

const S3_ID = secret('s3 access key id', 'AKIA');
const S3_SECRET = secret('s3 secret key');
const S3_BAD_BUCKET_SECRET = secret('s3 secret key (bucket)');
const S3_UNREACHABLE_SECRET = secret('s3 secret key (unreachable)');
const HTTP_TOKEN = secret('http bearer token');
const HTTP_URL_PASSWORD = secret('password in an http url');
const ETCD_PASSWORD = secret('etcd password');
const TLS_KEY_BODY = secret('TLS key file content');
const ETCD_KEY_BODY = secret('etcd client key content');
/** Azure keys are base64 (the SDK signs with them); the scan also looks for their URL-encoded form. */
const AZ_KEY = randomBytes(32).toString('base64');
const AZ_UNREACHABLE_KEY = randomBytes(32).toString('base64');
secrets.set('azure account key', AZ_KEY);
secrets.set('azure account key (unreachable)', AZ_UNREACHABLE_KEY);
const GCS_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
// A PEM key is found by any one of its lines as well.
GCS_KEY.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')).forEach((line, i) => secrets.set(`gcs private key line ${i}`, line));

let dir: string;
let s3: S3Emulator;
let azure: AzureEmulator;
let gcs: FakeGcs;
let files: FileServer;
let etcd: EtcdServer;
let cert: TestCert;
let runtime: ExampleRuntimeHandle;
let spareRuntime: ExampleRuntimeHandle;
let mesh: MeshHandle;
let metricsPort: number;
/** A port nothing listens on. */
let closedPort: number;
const processes: ManagedProcess[] = [];

const ENTRIES = (): Record<string, Record<string, unknown>> => ({
  's3-unreachable': {
    type: 's3',
    endpoint_url: `http://127.0.0.1:${closedPort}`,
    region: 'us-east-1',
    bucket: 'models',
    access_key_id: S3_ID,
    secret_access_key: S3_UNREACHABLE_SECRET,
  },
  's3-wrong-key': { type: 's3', endpoint_url: s3.endpoint, region: 'us-east-1', bucket: 'models', access_key_id: S3_ID, secret_access_key: S3_SECRET },
  // s3rver knows only the id S3RVER and does not check signatures: this one gets as far as the missing bucket.
  's3-no-bucket': {
    type: 's3',
    endpoint_url: s3.endpoint,
    region: 'us-east-1',
    bucket: 'no-such-bucket',
    access_key_id: s3.accessKeyId,
    secret_access_key: S3_BAD_BUCKET_SECRET,
  },
  'azure-wrong-key': { type: 'azure', account_name: azure.accountName, connection_string: azure.connectionString(AZ_KEY), container: 'models' },
  'azure-unreachable': {
    type: 'azure',
    account_name: 'acct',
    container: 'models',
    connection_string: `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${AZ_UNREACHABLE_KEY};BlobEndpoint=http://127.0.0.1:${closedPort}/acct;`,
  },
  'gcs-wrong-key': { type: 'gcs', bucket: 'private', endpoint_url: gcs.endpoint, client_email: 'puller@mm-test.iam.gserviceaccount.com', private_key: GCS_KEY },
  'gcs-unreachable': {
    type: 'gcs',
    bucket: 'private',
    endpoint_url: `http://127.0.0.1:${closedPort}`,
    client_email: 'puller@mm-test.iam.gserviceaccount.com',
    private_key: GCS_KEY,
  },
  'http-wrong-token': { type: 'http', url: files.url, headers: { Authorization: `Bearer ${HTTP_TOKEN}` } },
  'http-unreachable': { type: 'http', url: `http://puller:${HTTP_URL_PASSWORD}@127.0.0.1:${closedPort}/repo`, headers: { Authorization: `Bearer ${HTTP_TOKEN}` } },
});

function keep(from: string, text: string): void {
  seen.push({ from, text });
}

/** Runs a `modelmesh` command to its end and keeps all it printed. */
async function run(name: string, args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number | null; log: string }> {
  const proc = spawnModelmesh(group, name, args, env);
  processes.push(proc);
  const code = await proc.waitForExit();
  return { code, log: proc.log };
}

/** Starts a mesh that must fail to start; keeps its output (kept with every process's output at the end too). */
async function failingMesh(instanceId: string, kvStore: string, env: Record<string, string> = {}): Promise<string> {
  const { process: proc } = await spawnMesh(group, { instanceId, runtimePort: spareRuntime.port, kvStore, env: { MM_LOG_LEVEL: 'debug', ...env } });
  processes.push(proc);
  expect(await proc.waitForExit()).toBe(1);
  return proc.log;
}

function writeFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mm-secret-scan-'));
  closedPort = await freePort();
  cert = makeTestCert(dir);
  [s3, azure, gcs, files, etcd] = await Promise.all([
    startS3rver(), startAzurite(), startFakeGcs(), startFileServer({ '/model.txt': 'never served' }, { requiredHeaders: { authorization: 'Bearer other' } }),
    startEtcd(),
  ]);
  await s3.createBucket('models');
  await azure.createContainer('models');
  gcs.createBucket('private', {
    serviceAccount: {
      email: 'puller@mm-test.iam.gserviceaccount.com',
      publicKeyPem: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    },
  });
  await enableEtcdAuth(etcd.endpoint, { name: 'mesh', password: ETCD_PASSWORD, prefix: '/scan/' }, secret('etcd root password'));

  const storageConfigDir = join(dir, 'storage-config');
  mkdirSync(storageConfigDir);
  for (const [key, entry] of Object.entries(ENTRIES())) writeFileSync(join(storageConfigDir, key), JSON.stringify(entry));

  runtime = await startExampleRuntime(group, 'runtime');
  spareRuntime = await startExampleRuntime(group, 'spare runtime');
  processes.push(runtime.process, spareRuntime.process);
  metricsPort = await freePort();
  mesh = await startMesh(group, {
    instanceId: 'scan-1',
    runtimePort: runtime.port,
    kvStore: `etcd:${writeFile('etcd_connection', JSON.stringify({ endpoints: etcd.endpoint, root_prefix: '/scan', userid: 'mesh', password: ETCD_PASSWORD }))}`,
    rest: true,
    env: {
      STORAGE_CONFIG_DIR: storageConfigDir,
      ROOT_MODEL_DIR: join(dir, 'models'),
      MM_METRICS: `prometheus:port=${metricsPort};scheme=http`,
      MM_LOG_LEVEL: 'debug',
      MM_LOAD_FAILURE_EXPIRY_TIME_MS: '600000',
    },
  });
  closers.push(mesh.client);
  processes.push(mesh.process);
}, 120_000);

afterAll(async () => {
  for (const c of closers) c.close();
  await group.stopAll();
  await Promise.all([s3?.stop(), azure?.stop(), gcs?.stop(), files?.stop(), etcd?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('every failing storage entry: registerModel, getModelStatus, gRPC and REST inference report the failure without its secrets', async () => {
  const grpc = inferenceClient(mesh.grpcPort);
  closers.push(grpc);
  const keys = Object.keys(ENTRIES());
  await Promise.all(keys.map(async (key) => {
    const modelId = `m-${key}`;
    const registered = await callMesh(mesh.client, 'registerModel', {
      modelId, modelInfo: { type: 'example', path: 'model.txt', key: JSON.stringify({ storage_key: key }) }, loadNow: true, sync: true,
    });
    keep(`registerModel ${key}`, JSON.stringify(registered));
    const status = await callMesh(mesh.client, 'getModelStatus', { modelId });
    keep(`getModelStatus ${key}`, JSON.stringify(status));
    // The failure is real and reported: the storage key is named, so the paths above were driven.
    expect(status.status).toBe(ModelStatus.LOADING_FAILED);
    expect(status.errors.join('\n')).toContain(`storage key '${key}'`);

    const err = await infer(grpc, bytesRequest('x'), { 'mm-model-id': modelId }).then(() => undefined, (e: ServiceError) => e);
    expect(err).toBeDefined();
    keep(`ModelInfer ${key}`, JSON.stringify({ code: err?.code, message: err?.message, details: err?.details, metadata: err?.metadata.toJSON() }));
    const rest = await httpPostJson(mesh.restPort!, `/v2/models/${modelId}/infer`, { inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: ['x'] }] });
    expect(rest.status).toBeGreaterThanOrEqual(400);
    keep(`REST ${key}`, JSON.stringify(rest));
  }));
}, 180_000);

test('operator commands against the mesh and failing ones print no secret', async () => {
  const target = ['--mesh', `127.0.0.1:${mesh.grpcPort}`];
  const ok = [
    await run('status', ['status', ...target]),
    await run('status --model', ['status', ...target, '--model', 'm-s3-wrong-key']),
    await run('models list', ['models', 'list', ...target, '--json']),
  ];
  for (const r of ok) expect(r.code).toBe(0);
  expect(ok[1].log).toContain("storage key 's3-wrong-key'");

  const badKey = writeFile('cli-bad.key', `-----BEGIN PRIVATE KEY-----\n${TLS_KEY_BODY}\n-----END PRIVATE KEY-----\n`);
  const tlsFlags = ['--tls-ca', cert.certPath, '--tls-cert', cert.certPath, '--tls-key', badKey];
  const failed = [
    await run('status with a bad key', ['status', ...target, ...tlsFlags]),
    await run('status, nothing listening', ['status', '--mesh', `127.0.0.1:${closedPort}`, ...tlsFlags]),
    await run('models register with a bad key', ['models', 'register', 'x', '--type', 'example', '--path', 'p', ...target, ...tlsFlags]),
  ];
  for (const r of failed) expect(r).toMatchObject({ code: 2, log: expect.stringMatching(/^modelmesh: --tls-ca, --tls-cert and --tls-key must be PEM files/) });
}, 120_000);

test('a mesh with a wrong etcd password, a bad TLS key file or a bad etcd client key fails to start without echoing them', async () => {
  const wrongPassword = secret('wrong etcd password');
  const etcdFile = writeFile('wrong-password.json', JSON.stringify({ endpoints: etcd.endpoint, userid: 'mesh', password: wrongPassword }));
  expect(await failingMesh('scan-wrong-password', `etcd:${etcdFile}`)).toContain("authentication failed for user 'mesh'");

  const badKey = writeFile('mesh-bad.key', `-----BEGIN PRIVATE KEY-----\n${TLS_KEY_BODY}\n-----END PRIVATE KEY-----\n`);
  expect(await failingMesh('scan-bad-tls-key', 'embedded', { MM_TLS_KEY_CERT_PATH: cert.certPath, MM_TLS_PRIVATE_KEY_PATH: badKey }))
    .toContain('MM_TLS_KEY_CERT_PATH');

  const badEtcdKey = writeFile('bad-client-key.json', JSON.stringify({
    endpoints: `https://127.0.0.1:${closedPort}`,
    certificate: cert.certPem,
    client_certificate: cert.certPem,
    client_key: `-----BEGIN PRIVATE KEY-----\n${ETCD_KEY_BODY}\n-----END PRIVATE KEY-----\n`,
  }));
  expect(await failingMesh('scan-bad-etcd-key', `etcd:${badEtcdKey}`))
    .toContain('etcd_connection: client_certificate[_file] and client_key[_file] are not a usable PEM certificate and matching key');
}, 120_000);

test('/metrics and /ready', async () => {
  const metrics = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(metrics.status).toBe(200);
  keep('/metrics', metrics.body);
  keep('/ready', JSON.stringify(await httpGet(`http://127.0.0.1:${mesh.probePort}/ready`)));
});

test('nothing anyone could read holds a secret', () => {
  for (const proc of processes) keep(`output of ${proc.name}`, proc.log);
  // The scan sees what it should: the meshes' debug logs and every failure above.
  expect(seen.length).toBeGreaterThan(40);
  expect(seen.some((s) => s.text.includes('"level":"debug"'))).toBe(true);
  const leaks: string[] = [];
  for (const { from, text } of seen) {
    for (const [name, value] of secrets) {
      if (text.includes(value) || text.includes(encodeURIComponent(value))) leaks.push(`${name} in ${from}`);
    }
  }
  expect(leaks).toEqual([]);
});
