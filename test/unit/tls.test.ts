import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverOptions, readTlsMaterial } from '../../runtime/src/api/tls';
import { ConfigError } from '../../runtime/src/config';
import { makeTestCert } from '../harness/storage-servers';

describe('TLS files', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'mm-tls-unit-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a certificate and its key are read; without a trust file peers are checked against it and the public roots', () => {
    const cert = makeTestCert(dir);
    const material = readTlsMaterial({ certPath: cert.certPath, keyPath: cert.keyPath, clientAuth: 'require', trustCertPaths: [] });
    expect(material.cert.toString()).toBe(cert.certPem);
    expect(material.ca.length).toBeGreaterThan(10);
    expect(serverOptions({ certPath: '', keyPath: '', clientAuth: 'optional', trustCertPaths: [] }, material)).toMatchObject({ requestCert: true, rejectUnauthorized: false });
  });

  test('unreadable or unusable files fail naming the variable', () => {
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate');
    const read = (certPath: string, keyPath: string) => () => readTlsMaterial({ certPath, keyPath, clientAuth: 'none', trustCertPaths: [] });
    expect(read(join(dir, 'missing.pem'), garbage)).toThrow(ConfigError);
    expect(read(join(dir, 'missing.pem'), garbage)).toThrow(/^MM_TLS_KEY_CERT_PATH names a file that cannot be read/);
    expect(read(garbage, garbage)).toThrow(/^MM_TLS_KEY_CERT_PATH and MM_TLS_PRIVATE_KEY_PATH do not hold a usable certificate and matching key/);
  });
});
