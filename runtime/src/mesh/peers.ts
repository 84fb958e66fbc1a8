import { ChannelCredentials, Metadata, credentials } from '@grpc/grpc-js';
import { ModelMeshClient, ModelStatusInfo } from '../../../proto/gen/model-mesh';
import { toMeshError } from '../errors';
import { LoadPriority } from '../loader';

/**
 * Calls from one mesh instance to another over the peer's front door. A "load here" is an ensureLoaded carrying
 * internal metadata that tells the peer to load the model locally instead of placing it again.
 */

export const LOAD_HERE_HEADER = 'mm-load-here';
export const LOAD_PRIORITY_HEADER = 'mm-load-priority';

export class Peers {
  private readonly clients = new Map<string, ModelMeshClient>();

  /** `creds` is asked at each new client, so renewed certificates apply after `close()`. */
  constructor(private readonly creds: () => ChannelCredentials = () => credentials.createInsecure()) {}

  private client(address: string): ModelMeshClient {
    let client = this.clients.get(address);
    if (!client) {
      client = new ModelMeshClient(address, this.creds(), { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 2_000 });
      this.clients.set(address, client);
    }
    return client;
  }

  /** Asks the instance at `address` to load `modelId` itself; resolves with its status when the load has finished. */
  loadHere(address: string, modelId: string, priority: LoadPriority, timeoutMs: number): Promise<ModelStatusInfo> {
    const metadata = new Metadata();
    metadata.set(LOAD_HERE_HEADER, 'true');
    metadata.set(LOAD_PRIORITY_HEADER, priority);
    return new Promise((resolve, reject) => {
      this.client(address).ensureLoaded({ modelId, lastUsedTime: 0, sync: true }, metadata, { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(toMeshError(err, `instance at ${address}`)) : resolve(res)));
    });
  }

  /** Drops the client of an instance that left. */
  forget(address: string): void {
    this.clients.get(address)?.close();
    this.clients.delete(address);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
