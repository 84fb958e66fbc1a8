import { Server } from '@grpc/grpc-js';
import { echoService } from './echo';
import { inferenceService } from './inference';
import { ModelStore } from './model-store';
import type { ExampleRuntimeOptions } from './options';
import { modelRuntimeService } from './spi';
import { ExampleStreamService } from '../../../proto/gen/example';
import { GRPCInferenceServiceService } from '../../../proto/gen/grpc_predict_v2';
import { ModelRuntimeService } from '../../../proto/gen/model-runtime';
import { bindServer, DEFAULT_SHUTDOWN_GRACE_MS, shutDownWithin } from '../shared/grpc-server';

/** A running example runtime. */
export interface ExampleRuntimeServer {
  readonly host: string;
  /** The bound port (the kernel's choice when the options said 0); 0 on a Unix socket. */
  readonly port: number;
  /** Where it listens, for the start-up line: `host:port` or `socket <path>`. */
  readonly where: string;
  readonly store: ModelStore;
  /** Cancels loads, lets calls in flight finish for up to `graceMs`, then cuts the rest off. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts one grpc-js server serving the SPI, KServe v2 and ExampleStream on one port. */
export async function startExampleRuntimeServer(options: ExampleRuntimeOptions,
  log: (line: string) => void): Promise<ExampleRuntimeServer> {
  const store = new ModelStore(options, log);
  const server = new Server();
  server.addService(ModelRuntimeService, modelRuntimeService(store, options));
  server.addService(GRPCInferenceServiceService, inferenceService(store, options.inferDelayMs));
  server.addService(ExampleStreamService, echoService(store));

  const { port, where } = await bindServer(server, options);

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = DEFAULT_SHUTDOWN_GRACE_MS) => {
    if (!stopping) {
      store.close();
      stopping = shutDownWithin(server, graceMs, log);
    }
    return stopping;
  };
  return { host: options.host, port, where, store, stop };
}
