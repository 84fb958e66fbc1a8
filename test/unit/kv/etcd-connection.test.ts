import { inspect } from 'node:util';
import { status } from '@grpc/grpc-js';
import {
  describeEtcdConnection,
  etcdConnectionFromEndpoints,
  loadEtcdConnection,
  parseEtcdConnection,
  parseKvStoreSetting,
} from '../../../runtime/src/kv/etcd-connection';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nsecretkeymaterial\n-----END PRIVATE KEY-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nMIIBclient\n-----END CERTIFICATE-----\n';

const noFiles = (path: string): Buffer => {
  throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
};
const parse = (doc: unknown, readFile = noFiles) => parseEtcdConnection(typeof doc === 'string' ? doc : JSON.stringify(doc), {
  source: '/etc/mm/etcd_connection', baseDir: '/etc/mm', readFile,
});
const errorOf = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
};

describe('parseKvStoreSetting (KV_STORE)', () => {
  test.each([
    ['embedded', { kind: 'embedded' }],
    [' embedded ', { kind: 'embedded' }],
    ['etcd:/opt/kserve/mmesh/etcd/etcd_connection', { kind: 'etcd-file', path: '/opt/kserve/mmesh/etcd/etcd_connection' }],
    ['etcd:etcd_connection', { kind: 'etcd-file', path: 'etcd_connection' }],
    ['etcd:./conf/etcd.json', { kind: 'etcd-file', path: './conf/etcd.json' }],
    ['etcd:localhost:2379', { kind: 'etcd-endpoints', endpoints: 'localhost:2379' }],
    ['etcd:10.0.0.1:2379,10.0.0.2:2379', { kind: 'etcd-endpoints', endpoints: '10.0.0.1:2379,10.0.0.2:2379' }],
    ['etcd:[::1]:2379', { kind: 'etcd-endpoints', endpoints: '[::1]:2379' }],
    ['etcd:http://etcd:2379', { kind: 'etcd-endpoints', endpoints: 'http://etcd:2379' }],
    ['etcd:https://a:2379,https://b:2379', { kind: 'etcd-endpoints', endpoints: 'https://a:2379,https://b:2379' }],
    ['etcd://etcd:2379', { kind: 'etcd-endpoints', endpoints: 'etcd:2379' }],
  ])('%s', (value, expected) => {
    expect(parseKvStoreSetting(value)).toEqual(expected);
  });

  test.each(['', 'redis:localhost:6379', 'etcd:', 'etcd:   ', 'zookeeper'])('rejects %j naming KV_STORE and the forms', (value) => {
    const err = errorOf(() => parseKvStoreSetting(value));
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(err.message).toMatch(/^KV_STORE /);
    expect(err.message).toContain('etcd:<path to etcd_connection JSON>');
  });

  test('does not echo credentials in a rejected value', () => {
    expect(errorOf(() => parseKvStoreSetting('consul://admin:s3cret@host:1')).message).not.toContain('s3cret');
  });
});

describe('etcdConnectionFromEndpoints (KV_STORE=etcd:<host:port>)', () => {
  test('adds the scheme and default port', () => {
    expect(etcdConnectionFromEndpoints('a:1, b ,[::1]:3')).toEqual({
      endpoints: ['http://a:1', 'http://b:2379', 'http://[::1]:3'], rootPrefix: '', tls: undefined,
    });
  });

  test('https endpoints use TLS with the system roots', () => {
    expect(etcdConnectionFromEndpoints('https://etcd:2379')).toEqual({ endpoints: ['https://etcd:2379'], rootPrefix: '', tls: {} });
  });

  test('refuses credentials in the URL without echoing them', () => {
    const err = errorOf(() => etcdConnectionFromEndpoints('http://root:s3cret@etcd:2379'));
    expect(err.message).toMatch(/^KV_STORE: .*carries credentials; use userid and password/);
    expect(err.message).not.toContain('s3cret');
  });
});

describe('parseEtcdConnection (etcd_connection JSON)', () => {
  test('upstream example: https endpoints, root prefix, user, inline CA, override authority', () => {
    const conn = parse({
      endpoints: 'https://etcd-0.etcd:2379,https://etcd-1.etcd:2379',
      userid: 'mesh',
      password: 'hunter2',
      root_prefix: 'modelmesh-serving',
      certificate: CA,
      override_authority: 'etcd.example',
    });
    expect(conn.endpoints).toEqual(['https://etcd-0.etcd:2379', 'https://etcd-1.etcd:2379']);
    expect(conn.rootPrefix).toBe('modelmesh-serving');
    expect(conn.auth?.username).toBe('mesh');
    expect(conn.auth?.password.reveal().toString()).toBe('hunter2');
    expect(conn.tls?.ca?.toString()).toBe(CA);
    expect(conn.tls?.overrideAuthority).toBe('etcd.example');
    expect(conn.tls?.clientKey).toBeUndefined();
  });

  test('secrets never print: not in JSON, inspect, String() or the description', () => {
    const conn = parse({ endpoints: 'etcd:2379', userid: 'mesh', password: 'hunter2', certificate: CA, client_key: KEY, client_certificate: CERT });
    for (const shown of [JSON.stringify(conn), inspect(conn, { depth: 10 }), String(conn.auth?.password), describeEtcdConnection(conn)]) {
      expect(shown).not.toContain('hunter2');
      expect(shown).not.toContain('secretkeymaterial');
    }
    expect(describeEtcdConnection(conn)).toBe('etcd https://etcd:2379 user mesh mTLS');
    expect(conn.tls?.clientKey?.reveal().toString()).toBe(KEY);
  });

  test('endpoints without a scheme are http, or https when TLS material is given; the port defaults to 2379', () => {
    expect(parse({ endpoints: 'etcd' }).endpoints).toEqual(['http://etcd:2379']);
    expect(parse({ endpoints: 'etcd' }).tls).toBeUndefined();
    expect(parse({ endpoints: 'etcd:1234', certificate: CA }).endpoints).toEqual(['https://etcd:1234']);
    expect(parse({ endpoints: ['a:1', 'http://b:2/'] }).endpoints).toEqual(['http://a:1', 'http://b:2']);
    expect(parse({ endpoints: 'https://etcd' }).tls).toEqual({ ca: undefined, clientCertificate: undefined, clientKey: undefined, overrideAuthority: undefined });
  });

  test('*_file fields are read relative to the JSON file\'s folder, or as absolute paths', () => {
    const read: string[] = [];
    const conn = parse({
      endpoints: 'etcd:2379',
      certificate_file: 'ca.pem',
      client_key_file: '/secure/client.key',
      client_certificate_file: 'sub/client.crt',
    }, (path) => {
      read.push(path);
      return Buffer.from(`contents of ${path}`);
    });
    expect(read.sort()).toEqual(['/etc/mm/ca.pem', '/etc/mm/sub/client.crt', '/secure/client.key']);
    expect(conn.tls?.ca?.toString()).toBe('contents of /etc/mm/ca.pem');
    expect(conn.tls?.clientCertificate?.toString()).toBe('contents of /etc/mm/sub/client.crt');
  });

  test.each([
    ['malformed JSON', '{"endpoints": "etcd", "password": "hunter2",', /not valid JSON/],
    ['not an object', '["etcd:2379"]', /must be a JSON object/],
    ['missing endpoints', { root_prefix: 'x' }, /endpoints is required/],
    ['empty endpoints', { endpoints: ' , ' }, /endpoints: no endpoint given/],
    ['endpoints of the wrong type', { endpoints: 2379 }, /endpoints must be a string/],
    ['a bad scheme', { endpoints: 'unix:///run/etcd.sock' }, /endpoints: .*has scheme unix/],
    ['a path in an endpoint', { endpoints: 'http://etcd:2379/v3' }, /endpoints: .*without a path/],
    ['a bad port', { endpoints: 'etcd:99999' }, /endpoints: .*expected 1-65535/],
    ['mixed schemes', { endpoints: 'http://a:1,https://b:2' }, /mixes http:\/\/ and https:\/\//],
    ['plain http with a CA', { endpoints: 'http://a:1', certificate: CA }, /plain http but TLS settings/],
    ['a password without userid', { endpoints: 'etcd', password: 'hunter2' }, /userid and password must be given together/],
    ['a password that is not a string', { endpoints: 'etcd', userid: 'u', password: 12345 }, /password must be a string$/],
    ['both certificate and certificate_file', { endpoints: 'etcd', certificate: CA, certificate_file: 'ca.pem' }, /give certificate or certificate_file, not both/],
    ['a client key without a certificate', { endpoints: 'etcd', client_key: KEY }, /client_key\[_file\] and client_certificate\[_file\] must be given together/],
    ['an unreadable certificate_file', { endpoints: 'etcd', certificate_file: 'missing.pem' }, /cannot read certificate_file \/etc\/mm\/missing.pem: ENOENT/],
    ['a root_prefix that is not a string', { endpoints: 'etcd', root_prefix: ['a'] }, /root_prefix must be a string, got \["a"\]/],
  ])('%s: a clear error naming the source and field, never a secret', (_, doc, expected) => {
    const err = errorOf(() => parse(doc));
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(err.message).toMatch(/^etcd_connection \(\/etc\/mm\/etcd_connection\): /);
    expect(err.message).toMatch(expected);
    expect(err.message).not.toContain('hunter2');
    expect(err.message).not.toContain('12345');
    expect(err.message).not.toContain('secretkeymaterial');
  });
});

describe('loadEtcdConnection', () => {
  test('reads the file named by KV_STORE and resolves *_file names next to it', () => {
    const files: Record<string, string> = {
      '/opt/etcd/etcd_connection': JSON.stringify({ endpoints: 'etcd:2379', certificate_file: 'ca.pem', root_prefix: 'mm-root' }),
      '/opt/etcd/ca.pem': CA,
    };
    const conn = loadEtcdConnection({ kind: 'etcd-file', path: '/opt/etcd/etcd_connection' }, (path) => {
      if (!(path in files)) return noFiles(path);
      return Buffer.from(files[path]);
    });
    expect(conn).toMatchObject({ endpoints: ['https://etcd:2379'], rootPrefix: 'mm-root' });
    expect(conn.tls?.ca?.toString()).toBe(CA);
  });

  test('an unreadable file is named in the error', () => {
    const err = errorOf(() => loadEtcdConnection({ kind: 'etcd-file', path: '/nope/etcd_connection' }, noFiles));
    expect(err.message).toBe('KV_STORE: cannot read etcd_connection file /nope/etcd_connection: ENOENT');
  });
});
