import { AnonymousCredential, BlobServiceClient, ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';
import { PullError, detailOf } from '../errors';
import { type ObjectInfo, type ObjectStore, pullObjects } from './objects';
import { type ProviderContext, type StorageProvider, endpointUrl, stringField } from './types';

/** Retries bounded so an unreachable account fails within seconds rather than the SDK's minutes. */
function pipelineOptions(ctx: ProviderContext): StoragePipelineOptions {
  return { retryOptions: { maxTries: ctx.settings.attempts, retryDelayInMs: 200, maxRetryDelayInMs: 2_000, tryTimeoutInMs: 60_000 } };
}

function containerClient(ctx: ProviderContext, account: string, container: string): ContainerClient {
  const connectionString = stringField(ctx, 'connection_string');
  if (connectionString) {
    try {
      return BlobServiceClient.fromConnectionString(connectionString, pipelineOptions(ctx)).getContainerClient(container);
    } catch (err) {
      throw new PullError('invalid-storage-config',
        `storage key '${ctx.storageKey}': "connection_string" is not usable: ${detailOf(err, ctx.secrets)}`, ctx.storageKey);
    }
  }
  if (stringField(ctx, 'client_id') || stringField(ctx, 'client_secret') || stringField(ctx, 'tenant_id')) {
    throw new PullError('invalid-storage-config',
      `storage key '${ctx.storageKey}': service-principal credentials (client_id, client_secret, tenant_id) are not supported by this puller; use "connection_string"`,
      ctx.storageKey);
  }
  // Anonymous access to a public container. `endpoint_url` (this project's addition) replaces the public
  // `https://<account>.blob.core.windows.net` for sovereign clouds, Azure Stack or an emulator.
  const base = endpointUrl(ctx) ?? `https://${account}.blob.core.windows.net`;
  return new ContainerClient(`${base}/${encodeURIComponent(container)}`, new AnonymousCredential(), pipelineOptions(ctx));
}

/**
 * `type: azure` — Azure Blob Storage with upstream's fields: `account_name` and `container` (both required), and a
 * `connection_string` or nothing (anonymous).
 */
export const azureProvider: StorageProvider = async (ctx, targets) => {
  const account = stringField(ctx, 'account_name', true) as string;
  const containerName = stringField(ctx, 'container', true) as string;
  const client = containerClient(ctx, account, containerName);
  const prefix = `azure://${account}/${containerName}`;

  const store: ObjectStore = {
    describe: (key) => `${prefix}/${key}`,
    async *list(p, signal): AsyncIterable<ObjectInfo> {
      for await (const blob of client.listBlobsFlat({ prefix: p, abortSignal: signal })) {
        yield { key: blob.name, size: blob.properties.contentLength ?? 0 };
      }
    },
    async open(key, signal) {
      const answer = await client.getBlobClient(key).download(0, undefined, { abortSignal: signal, maxRetryRequests: ctx.settings.attempts });
      if (!answer.readableStreamBody) throw new PullError('storage-error', `storage key '${ctx.storageKey}': ${prefix}/${key}: empty answer`, ctx.storageKey);
      return answer.readableStreamBody;
    },
  };
  await pullObjects(ctx, store, targets);
};
