import { status } from '@grpc/grpc-js';
import { PullError, classify, detailOf, redact, secretsOf, storageFailure } from '../../../runtime/src/puller/errors';

describe('secretsOf and redact', () => {
  test('collects credential fields, header values, connection-string parts and URL userinfo and query', () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n';
    const secrets = secretsOf({
      type: 's3',
      bucket: 'public-bucket-name',
      region: 'us-east-1',
      endpoint_url: 'https://s3.example.com',
      access_key_id: 'AKIAEXAMPLE',
      secret_access_key: 'wJalrXUtnFEMI',
      private_key: pem,
      connection_string: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net',
      headers: { 'Authorization': 'Bearer abc.def', 'X-Multi': ['first-value', 'second-value'] },
      url: 'https://user:pa55word@host/path?sig=token-123&v=2',
    });
    for (const s of ['AKIAEXAMPLE', 'wJalrXUtnFEMI', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'c2VjcmV0a2V5', 'Bearer abc.def',
      'first-value', 'second-value', 'pa55word', 'token-123']) {
      expect(secrets).toContain(s);
    }
    for (const s of ['public-bucket-name', 'us-east-1', 'https://s3.example.com', 's3']) expect(secrets).not.toContain(s);
  });

  test('redact replaces every occurrence, longest secret first', () => {
    const secrets = secretsOf({ secret_access_key: 'abcd1234', connection_string: 'AccountKey=abcd1234XYZ;AccountName=a' });
    expect(redact('key abcd1234XYZ and abcd1234 again abcd1234', secrets)).toBe('key <redacted> and <redacted> again <redacted>');
  });
});

describe('classify', () => {
  const withCause = (cause: unknown) => Object.assign(new Error('wrapped'), { cause });
  test.each([
    ['AWS NoSuchKey', Object.assign(new Error('gone'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }), 'not-found'],
    ['AWS InvalidAccessKeyId', Object.assign(new Error('x'), { name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } }), 'unauthorized'],
    ['GCS ApiError 401', Object.assign(new Error('Invalid Credentials'), { code: 401 }), 'unauthorized'],
    ['GCS ApiError 404', Object.assign(new Error('No such object'), { code: 404 }), 'not-found'],
    ['Azure 403', Object.assign(new Error('AuthorizationFailure'), { statusCode: 403, code: 'AuthorizationFailure' }), 'unauthorized'],
    ['Azure ContainerNotFound', Object.assign(new Error('c'), { statusCode: 404, code: 'ContainerNotFound' }), 'not-found'],
    ['HTTP 503', Object.assign(new Error('HTTP 503'), { statusCode: 503 }), 'unreachable'],
    ['HTTP 500', Object.assign(new Error('HTTP 500'), { statusCode: 500 }), 'storage-error'],
    ['refused connection in a cause', withCause(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })), 'unreachable'],
    ['aggregate of network errors', Object.assign(new Error('x'), { errors: [Object.assign(new Error('e'), { code: 'ETIMEDOUT' })] }), 'unreachable'],
    ['only a message', new Error('AWS SDK error wrapper for Error: getaddrinfo ENOTFOUND minio'), 'unreachable'],
    ['TLS', Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'tls'],
    ['abort', Object.assign(new Error('aborted'), { name: 'AbortError' }), 'aborted'],
    ['disk full', Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'local-io'],
    ['missing file', Object.assign(new Error('no such file'), { code: 'ENOENT' }), 'not-found'],
    ['anything else', new Error('surprise'), 'storage-error'],
    ['not an error', 'a string', 'storage-error'],
  ])('%s', (_name, err, reason) => {
    expect(classify(err)).toBe(reason);
  });
});

describe('PullError', () => {
  test('maps reasons to gRPC codes; only an unreachable endpoint is retryable', () => {
    expect(new PullError('not-found', 'm')).toMatchObject({ code: status.NOT_FOUND, retryable: false, name: 'PullError' });
    expect(new PullError('storage-key-not-found', 'm').code).toBe(status.NOT_FOUND);
    expect(new PullError('unauthorized', 'm').code).toBe(status.PERMISSION_DENIED);
    expect(new PullError('invalid-request', 'm').code).toBe(status.INVALID_ARGUMENT);
    expect(new PullError('invalid-storage-config', 'm').code).toBe(status.FAILED_PRECONDITION);
    expect(new PullError('aborted', 'm').code).toBe(status.DEADLINE_EXCEEDED);
    expect(new PullError('unreachable', 'm')).toMatchObject({ code: status.UNAVAILABLE, retryable: true });
  });

  test('storageFailure names key and object, redacts the SDK text and keeps no cause', () => {
    const err = storageFailure(Object.assign(new Error('key sk-123456 rejected'), { code: 'AccessDenied' }), 'mykey', 's3://b/k', ['sk-123456']);
    expect(err.message).toBe("storage key 'mykey': s3://b/k: access denied (check the credentials in the storage key): AccessDenied: key <redacted> rejected");
    expect(err).toMatchObject({ reason: 'unauthorized', storageKey: 'mykey', object: 's3://b/k' });
    expect(err.cause).toBeUndefined();
  });

  test('detailOf keeps one bounded line', () => {
    expect(detailOf(new Error('a\n  b'), [])).toBe('a b');
    expect(detailOf(new Error('x'.repeat(1000)), []).length).toBeLessThanOrEqual(401);
  });
});
