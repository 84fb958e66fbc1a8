import { Server } from '@grpc/grpc-js';
import { inferenceService } from './inference';
import { OnnxModelStore, openCpuSession, SessionOpener } from './model-store';
import type { OnnxRuntimeOptions } from './options';
import { modelRuntimeService } from './spi';
import { GRPCInferenceServiceService } from '../../../proto/gen/grpc_predict_v2';
import { ModelRuntimeService } from '../../../proto/gen/model-runtime';
import { bindServer, DEFAULT_SHUTDOWN_GRACE_MS, shutDownWithin } from '../shared/grpc-server';

/** Largest message accepted: KServe v2 tensors can be large (upstream's grpcMaxMessageSizeBytes default, 16 MiB). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A running ONNX runtime. */
export interface OnnxRuntimeServer {
  readonly host: string;
  /** The bound port (the kernel's choice when the options said 0); 0 on a Unix socket. */
  readonly port: number;
  /** Where it listens, for the start-up line: `host:port` or `socket <path>`. */
  readonly where: string;
  readonly store: OnnxModelStore;
  /** Cancels loads, lets calls in flight finish for up to `graceMs`, releases every session. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts one grpc-js server serving the SPI and KServe v2 on one port. */
export async function startOnnxRuntimeServer(options: OnnxRuntimeOptions, log: (line: string) => void,
  open: SessionOpener = openCpuSession): Promise<OnnxRuntimeServer> {
  const store = new OnnxModelStore(options, log, open);
  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  server.addService(ModelRuntimeService, modelRuntimeService(store, options));
  server.addService(GRPCInferenceServiceService, inferenceService(store));
  const { port, where } = await bindServer(server, options);

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = DEFAULT_SHUTDOWN_GRACE_MS) => {
    // Models leave at once (new calls get NOT_FOUND and go elsewhere); sessions are released as their calls end.
    stopping ??= Promise.all([store.close(), shutDownWithin(server, graceMs, log)]).then(() => undefined);
    return stopping;
  };
  return { host: options.host, port, where, store, stop };
}
