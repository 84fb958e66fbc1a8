import { execFileSync } from 'node:child_process';
import { randomBytes, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { freePort } from './ports';
import { ManagedProcess, ProcessGroup } from './processes';
import { waitForTcpPort } from './wait';

/**
 * Storage servers for the puller's tests, all on loopback: s3rver (an S3 emulator) and azurite (Microsoft's Azure
 * Storage emulator) as child processes from their npm packages, and in-process node servers for HTTP(S) files and for
 * the subset of the GCS JSON API that @google-cloud/storage uses to list and download objects.
 */

/** A self-signed certificate for 127.0.0.1/localhost, trusted by giving the certificate itself as the CA. */
export interface TestCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certPath: string;
  readonly keyPath: string;
}

/** Creates a throw-away certificate with openssl in `dir` (created if missing). */
export function makeTestCert(dir: string): TestCert {
  mkdirSync(dir, { recursive: true });
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8'), certPath, keyPath };
}

async function startProcess(name: string, script: string, args: string[], port: number,
  options: { env?: Record<string, string>; cwd?: string; host?: string } = {}): Promise<{ group: ProcessGroup; proc: ManagedProcess }> {
  const { host = '127.0.0.1', ...spawnOptions } = options;
  const group = new ProcessGroup();
  const proc = group.spawn(process.execPath, [script, ...args], { name, ...spawnOptions });
  // An early exit ends the wait at once instead of at the deadline.
  const exited = proc.waitForExit().then((code) => { throw new Error(`${name} exited (${code}):\n${proc.log}`); });
  try {
    await Promise.race([waitForTcpPort(port, host, { timeoutMs: 20_000 }), exited]);
  } catch (err) {
    await group.stopAll();
    throw err;
  }
  exited.catch(() => undefined);
  return { group, proc };
}

export interface S3Emulator {
  /** `http(s)://<address>:<port>` (127.0.0.1 unless asked otherwise, and when listening on 0.0.0.0) */
  readonly endpoint: string;
  /** s3rver's fixed account. */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  createBucket(bucket: string): Promise<void>;
  put(bucket: string, key: string, body: string | Buffer): Promise<void>;
  stop(): Promise<void>;
}

/** Starts s3rver (optionally over TLS with `cert`) with its data in a temporary folder. */
export async function startS3rver(options: { cert?: TestCert; address?: string; port?: number } = {}): Promise<S3Emulator> {
  const address = options.address ?? '127.0.0.1';
  // Listening on every address, it is asked on loopback.
  const host = address === '0.0.0.0' ? '127.0.0.1' : address;
  const port = options.port ?? await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'mm-s3rver-'));
  const bin = join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
  const tls = options.cert ? ['--key', options.cert.keyPath, '--cert', options.cert.certPath] : [];
  // Path-style for every host name, as MinIO answers: a client that reaches it as http://minio:9000 asks for bucket
  // "models", not "minio".
  const args = ['-d', dataDir, '-a', address, '-p', String(port), '--silent', '--no-vhost-buckets', ...tls];
  const { group } = await startProcess('s3rver', bin, args, port, { host })
    .catch((err) => { rmSync(dataDir, { recursive: true, force: true }); throw err; });
  const endpoint = `${options.cert ? 'https' : 'http'}://${host}:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(options.cert ? { requestHandler: { httpsAgent: { ca: options.cert.certPem } } } : {}),
  });
  return {
    endpoint,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    createBucket: async (bucket) => { await client.send(new CreateBucketCommand({ Bucket: bucket })); },
    put: async (bucket, key, body) => {
      const data = typeof body === 'string' ? Buffer.from(body) : body;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ContentLength: data.length }));
    },
    stop: async () => {
      client.destroy();
      await group.stopAll();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface AzureEmulator {
  /** `http://127.0.0.1:<port>/<account>`: the account's blob endpoint (path-style, as azurite serves it). */
  readonly blobEndpoint: string;
  readonly accountName: string;
  readonly accountKey: string;
  /** A connection string for the account. */
  connectionString(accountKey?: string): string;
  /** Creates a container; `publicRead` lets anonymous clients list and read it. */
  createContainer(name: string, publicRead?: boolean): Promise<void>;
  put(container: string, name: string, body: string | Buffer): Promise<void>;
  stop(): Promise<void>;
}

/** Starts azurite's blob service in memory, with one account whose key is random for this run. */
export async function startAzurite(): Promise<AzureEmulator> {
  const port = await freePort();
  const workDir = mkdtempSync(join(tmpdir(), 'mm-azurite-'));
  const accountName = 'mmtestacct';
  const accountKey = randomBytes(32).toString('base64');
  const bin = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  // In memory, run from a temporary folder so nothing lands in the checkout; telemetry off (no traffic off loopback).
  const { group } = await startProcess('azurite', bin, ['--blobHost', '127.0.0.1', '--blobPort', String(port), '--silent',
    '--inMemoryPersistence', '--skipApiVersionCheck', '--loose', '--disableTelemetry'], port,
  { env: { AZURITE_ACCOUNTS: `${accountName}:${accountKey}` }, cwd: workDir }).catch((err) => { rmSync(workDir, { recursive: true, force: true }); throw err; });
  const blobEndpoint = `http://127.0.0.1:${port}/${accountName}`;
  const connectionString = (key = accountKey) =>
    `DefaultEndpointsProtocol=http;AccountName=${accountName};AccountKey=${key};BlobEndpoint=${blobEndpoint};`;
  const service = BlobServiceClient.fromConnectionString(connectionString());
  return {
    blobEndpoint,
    accountName,
    accountKey,
    connectionString,
    createContainer: async (name, publicRead = false) => {
      await service.getContainerClient(name).create(publicRead ? { access: 'container' } : {});
    },
    put: async (container, name, body) => {
      const data = typeof body === 'string' ? Buffer.from(body) : body;
      await service.getContainerClient(container).getBlockBlobClient(name).upload(data, data.length);
    },
    stop: async () => {
      await group.stopAll();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface FileServer {
  /** `http(s)://127.0.0.1:<port>` */
  readonly url: string;
  /** Requests seen (path and query as sent, headers), newest last. */
  readonly requests: { url: string; headers: http.IncomingHttpHeaders }[];
  stop(): Promise<void>;
}

/**
 * Serves `files` (URL path → content) over HTTP, or HTTPS with `cert`. With `requiredHeaders`, a request missing one
 * of them (or with another value) gets 401, like a server that wants a token.
 */
export async function startFileServer(files: Readonly<Record<string, string | Buffer>>,
  options: { cert?: TestCert; requiredHeaders?: Readonly<Record<string, string>> } = {}): Promise<FileServer> {
  const requests: FileServer['requests'] = [];
  const handler: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ url: req.url ?? '/', headers: req.headers });
    for (const [name, value] of Object.entries(options.requiredHeaders ?? {})) {
      if (req.headers[name.toLowerCase()] !== value) {
        res.writeHead(401, { 'content-type': 'text/plain' }).end('missing or wrong credentials');
        return;
      }
    }
    const body = files[decodeURIComponent(url.pathname)];
    if (body === undefined) res.writeHead(404, { 'content-type': 'text/plain' }).end('no such file');
    else res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  };
  const server = options.cert ? https.createServer({ cert: options.cert.certPem, key: options.cert.keyPem }, handler) : http.createServer(handler);
  const port = await listen(server);
  return { url: `${options.cert ? 'https' : 'http'}://127.0.0.1:${port}`, requests, stop: () => close(server) };
}

export interface FakeGcs {
  /** The API endpoint to give the client (`apiEndpoint`, or the puller's `endpoint_url`). */
  readonly endpoint: string;
  createBucket(bucket: string, access: { public: true } | { serviceAccount: { email: string; publicKeyPem: string } }): void;
  put(bucket: string, name: string, body: string | Buffer): void;
  stop(): Promise<void>;
}

interface FakeBucket {
  readonly objects: Map<string, Buffer>;
  readonly serviceAccount?: { email: string; publicKeyPem: string };
}

/** Verifies an RS256 JWT from `Authorization: Bearer …` against the account's public key and issuer. */
function authorized(header: string | undefined, account: { email: string; publicKeyPem: string }): boolean {
  const token = header?.startsWith('Bearer ') ? header.slice(7) : '';
  const [head, payload, signature] = token.split('.');
  if (!head || !payload || !signature) return false;
  const signed = verify('RSA-SHA256', Buffer.from(`${head}.${payload}`), account.publicKeyPem, Buffer.from(signature, 'base64url'));
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iss?: string; exp?: number };
  return signed && claims.iss === account.email && (claims.exp ?? 0) * 1000 > Date.now();
}

/**
 * A stand-in for Google Cloud Storage: the JSON API's object list (`GET /storage/v1/b/<bucket>/o`, paginated by
 * `pageSize` to exercise page tokens), object metadata and media download (`…/o/<name>?alt=media`), with GCS-shaped
 * JSON errors. A bucket is public or belongs to a service account whose self-signed JWTs it verifies. This is not a GCS
 * emulator: it implements only what the puller's read path uses.
 */
export async function startFakeGcs(options: { pageSize?: number } = {}): Promise<FakeGcs> {
  const buckets = new Map<string, FakeBucket>();
  const pageSize = options.pageSize ?? 2;
  const fail = (res: http.ServerResponse, code: number, message: string) =>
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code, message, errors: [{ message }] } }));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const match = /^\/storage\/v1\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(url.pathname);
    if (req.method !== 'GET' || !match) return fail(res, 400, `unsupported request ${req.method} ${url.pathname}`);
    const bucket = buckets.get(decodeURIComponent(match[1]));
    if (!bucket) return fail(res, 404, 'The specified bucket does not exist.');
    if (bucket.serviceAccount && !authorized(req.headers.authorization, bucket.serviceAccount)) {
      return fail(res, 401, 'Invalid Credentials');
    }
    if (match[2] === undefined) {
      const prefix = url.searchParams.get('prefix') ?? '';
      const names = [...bucket.objects.keys()].filter((n) => n.startsWith(prefix)).sort();
      const start = Number(url.searchParams.get('pageToken') ?? '0');
      const page = names.slice(start, start + pageSize);
      const items = page.map((name) => ({ kind: 'storage#object', name, bucket: match[1], size: String(bucket.objects.get(name)!.length) }));
      const next = start + pageSize < names.length ? { nextPageToken: String(start + pageSize) } : {};
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'storage#objects', items, ...next }));
    }
    const name = decodeURIComponent(match[2]);
    const body = bucket.objects.get(name);
    if (!body) return fail(res, 404, `No such object: ${match[1]}/${name}`);
    if (url.searchParams.get('alt') === 'media') return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
    return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name, bucket: match[1], size: String(body.length) }));
  });
  const port = await listen(server);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    createBucket: (bucket, access) => {
      buckets.set(bucket, { objects: new Map(), serviceAccount: 'serviceAccount' in access ? access.serviceAccount : undefined });
    },
    put: (bucket, name, body) => {
      const b = buckets.get(bucket);
      if (!b) throw new Error(`no bucket ${bucket}`);
      b.objects.set(name, typeof body === 'string' ? Buffer.from(body) : body);
    },
    stop: () => close(server),
  };
}
