import { type GetFilesOptions, type GetFilesResponse, Storage } from '@google-cloud/storage';
import { PullError } from '../errors';
import { type ObjectInfo, type ObjectStore, pullObjects } from './objects';
import { type StorageProvider, endpointUrl, stringField } from './types';

/**
 * `type: gcs` — Google Cloud Storage with upstream's fields: `bucket`, and `private_key` + `client_email` of a service
 * account (both or neither). Without them the client runs unauthenticated (public buckets), or with the node's or
 * workload's identity where one is found. `endpoint_url` is this project's addition (a GCS-compatible endpoint; tests
 * use it), not an upstream field.
 */
export const gcsProvider: StorageProvider = async (ctx, targets) => {
  const bucketName = stringField(ctx, 'bucket', true) as string;
  const privateKey = stringField(ctx, 'private_key') ?? '';
  const clientEmail = stringField(ctx, 'client_email') ?? '';
  if (Boolean(privateKey) !== Boolean(clientEmail)) {
    throw new PullError('invalid-storage-config',
      `storage key '${ctx.storageKey}': "private_key" and "client_email" must be given together`, ctx.storageKey);
  }
  const endpoint = endpointUrl(ctx);
  const retries = Math.max(0, ctx.settings.attempts - 1);
  const storage = new Storage({
    ...(endpoint ? { apiEndpoint: endpoint } : {}),
    ...(privateKey ? {
      credentials: { type: 'service_account', client_email: clientEmail, private_key: privateKey },
      // A custom endpoint is unauthenticated unless asked; with credentials given they must be sent.
      useAuthWithCustomEndpoint: true,
    } : {}),
    retryOptions: { autoRetry: retries > 0, maxRetries: retries, maxRetryDelay: 5, totalTimeout: 120 },
  });
  // Self-signed JWTs carrying the scope, as upstream's Go client sends them: no token exchange round trip (and so
  // no token endpoint to reach). Set before the first request, when the auth client is built from the credentials.
  if (privateKey) storage.authClient.useJWTAccessWithScope = true;
  const bucket = storage.bucket(bucketName);

  const store: ObjectStore = {
    describe: (key) => `gs://${bucketName}/${key}`,
    async *list(prefix, signal): AsyncIterable<ObjectInfo> {
      let query: GetFilesOptions | undefined = { prefix, autoPaginate: false, maxResults: 1000 };
      while (query) {
        if (signal.aborted) throw signal.reason;
        const [files, next]: GetFilesResponse = await bucket.getFiles(query);
        for (const f of files) yield { key: f.name, size: Number(f.metadata.size ?? 0) };
        query = next && (next as GetFilesOptions).pageToken ? { ...(next as GetFilesOptions), prefix, autoPaginate: false } : undefined;
      }
    },
    // A missing object or refused credentials surface as an error of this stream while it is written to staging.
    open: async (key) => bucket.file(key).createReadStream(),
  };
  await pullObjects(ctx, store, targets);
};
