import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { openStore } from '../../../runtime/src/kv';
import { EtcdServer, startEtcd } from '../../harness/etcd';
import { freePort } from '../../harness/ports';
import { waitFor } from '../../harness/wait';

/**
 * The etcd_connection JSON end to end against an etcd that demands TLS client certificates and a password: CA, client
 * key and certificate read from files next to the JSON, `override_authority` for a server certificate that does not
 * name the address dialled, and `userid`/`password`.
 */

const PASSWORD = 'Tls-Test-Password-1';
let etcd: EtcdServer;
let dir: string;
let tlsPort: number;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, a server certificate for the name `etcd.test` only, and a client certificate, all short-lived EC keys. */
function makeCertificates(): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=mm-test-ca');
  for (const [name, cn, usage] of [['server', 'etcd.test', 'serverAuth,clientAuth'], ['client', 'mesh-client', 'clientAuth']]) {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${cn}\nextendedKeyUsage=${usage}\n`);
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mm-etcd-tls-'));
  makeCertificates();
  const clientPort = await freePort();
  tlsPort = await freePort();
  // Plain http stays on the harness's port (its health check and the set-up below); TLS with client certs on another.
  etcd = await startEtcd({
    clientPort,
    extraArgs: [
      '--listen-client-urls', `http://127.0.0.1:${clientPort},https://127.0.0.1:${tlsPort}`,
      '--cert-file', join(dir, 'server.pem'), '--key-file', join(dir, 'server.key'),
      '--trusted-ca-file', join(dir, 'ca.pem'), '--client-cert-auth',
    ],
  });
  const admin = new Etcd3({ hosts: etcd.endpoint });
  try {
    await admin.role('root').create();
    await admin.user('root').create(PASSWORD);
    await admin.user('root').addRole('root');
    await admin.auth.authEnable({});
  } finally {
    admin.close();
  }
});

afterAll(async () => {
  await etcd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function connectionFile(name: string, fields: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({
    endpoints: `127.0.0.1:${tlsPort}`,
    root_prefix: '/tls-test',
    certificate_file: 'ca.pem',
    client_key_file: 'client.key',
    client_certificate_file: 'client.pem',
    userid: 'root',
    password: PASSWORD,
    override_authority: 'etcd.test',
    ...fields,
  }));
  return file;
}

test('TLS with a client certificate, override_authority and a password: reads, writes, watches and leases work', async () => {
  const store = await openStore(`etcd:${connectionFile('good.json', {})}`, { serviceName: 'svc', requestTimeoutMs: 3_000 });
  try {
    expect(store.description).toBe(`etcd https://127.0.0.1:${tlsPort} user root mTLS prefix /tls-test/mm/svc/`);
    const events: string[] = [];
    const watch = await store.watchPrefix('', 0, { onEvents: (evs) => events.push(...evs.map((e) => e.type)) });
    const lease = await store.grantLease(5);
    await store.put('k', 'secure', { lease });
    expect((await store.get('k'))?.value).toBe('secure');
    await lease.revoke();
    await waitFor('put and delete events', () => events.length >= 2);
    expect(events).toEqual(['put', 'delete']);
    await watch.cancel();
  } finally {
    await store.close();
  }
});

test('a wrong password fails with UNAUTHENTICATED and the password is not in the message', async () => {
  const file = connectionFile('bad-password.json', { password: 'Wrong-Password-2' });
  const err = await openStore(`etcd:${file}`, { serviceName: 'svc', requestTimeoutMs: 3_000 }).then(() => new Error('opened'), (e: unknown) => e as Error);
  expect(err).toMatchObject({ code: status.UNAUTHENTICATED });
  expect(err.message).toContain(`127.0.0.1:${tlsPort}`);
  expect(err.message).not.toContain('Wrong-Password-2');
});

test('without override_authority the server certificate (for etcd.test) does not match the host dialled: UNAVAILABLE, fast', async () => {
  const started = Date.now();
  const file = connectionFile('no-override.json', { override_authority: undefined, endpoints: `localhost:${tlsPort}` });
  const err = await openStore(`etcd:${file}`, { serviceName: 'svc', requestTimeoutMs: 2_000 }).then(() => new Error('opened'), (e: unknown) => e as Error);
  expect(err).toMatchObject({ code: status.UNAVAILABLE });
  expect(Date.now() - started).toBeLessThan(4_000);
});
