import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { PullError } from '../errors';
import { type ObjectInfo, type ObjectStore, pullObjects } from './objects';
import { type StorageProvider, endpointUrl, stringField } from './types';

/**
 * `type: s3` — S3 and S3-compatible stores (MinIO, Ceph, IBM COS, …) with upstream's fields: `endpoint_url`, `region`,
 * `access_key_id`, `secret_access_key`, `bucket` (or `default_bucket`), `certificate` (a PEM CA bundle). Path-style
 * addressing, as upstream forces, so any endpoint works without bucket DNS names.
 */
export const s3Provider: StorageProvider = async (ctx, targets) => {
  const bucket = stringField(ctx, 'bucket', true) as string;
  const accessKeyId = stringField(ctx, 'access_key_id') ?? '';
  const secretAccessKey = stringField(ctx, 'secret_access_key') ?? '';
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    throw new PullError('invalid-storage-config',
      `storage key '${ctx.storageKey}': "access_key_id" and "secret_access_key" must be given together`, ctx.storageKey);
  }
  const certificate = stringField(ctx, 'certificate');
  const makeClient = (anonymous: boolean) => new S3Client({
    endpoint: endpointUrl(ctx),
    // The SDK needs a region to sign; S3-compatible stores accept any, AWS redirects to the right one.
    region: stringField(ctx, 'region') || 'us-east-1',
    forcePathStyle: true,
    // Without static keys the SDK's default chain applies (environment, web identity, instance or pod identity);
    // anonymous requests go unsigned, for public buckets.
    credentials: accessKeyId ? { accessKeyId, secretAccessKey } : anonymous ? { accessKeyId: '', secretAccessKey: '' } : undefined,
    ...(anonymous ? { signer: { sign: async <R>(request: R) => request } } : {}),
    maxAttempts: ctx.settings.attempts,
    // Checksums only where S3 requires them: many S3-compatible stores answer without the newer checksum headers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: 10_000,
      ...(certificate ? { httpsAgent: { ca: certificate, keepAlive: true } } : {}),
    },
  });
  let client = makeClient(false);
  let anonymous = false;
  /** Sends with the entry's credentials; an entry without keys whose default chain finds none goes on unsigned. */
  const send = async <T>(call: (c: S3Client) => Promise<T>): Promise<T> => {
    try {
      return await call(client);
    } catch (err) {
      if (accessKeyId || anonymous || (err as Error).name !== 'CredentialsProviderError') throw err;
      ctx.log.debug('no credentials found for an entry without keys; sending unsigned requests', {});
      client.destroy();
      client = makeClient(true);
      anonymous = true;
      return call(client);
    }
  };

  const store: ObjectStore = {
    describe: (key) => `s3://${bucket}/${key}`,
    async *list(prefix, signal): AsyncIterable<ObjectInfo> {
      let token: string | undefined;
      do {
        const command = new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token });
        const page = await send((c) => c.send(command, { abortSignal: signal }));
        for (const o of page.Contents ?? []) if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0 };
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },
    async open(key, signal) {
      const answer = await send((c) => c.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }));
      if (!answer.Body) throw new PullError('storage-error', `storage key '${ctx.storageKey}': s3://${bucket}/${key}: empty answer`, ctx.storageKey);
      return answer.Body as Readable;
    },
  };
  try {
    await pullObjects(ctx, store, targets);
  } finally {
    // Each pull builds its client from the entry as read now (rotated secrets apply); its sockets go with it.
    client.destroy();
  }
};
