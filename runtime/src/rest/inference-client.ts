import { ChannelCredentials, ClientUnaryCall, Metadata, ServiceError, credentials } from '@grpc/grpc-js';
import {
  GRPCInferenceServiceClient, GRPCInferenceServiceService, ModelInferRequest, ModelInferResponse, ModelMetadataResponse,
  ServerMetadataResponse,
} from '../../../proto/gen/grpc_predict_v2';
import { internal, toMeshError } from '../errors';

/**
 * The REST server's one persistent gRPC channel to an inference.GRPCInferenceService endpoint (the mesh's front door
 * in production). Calls carry the model in a routing header, a deadline, and are cancelled when `signal` aborts
 * (the HTTP client went away). Failures are MeshErrors with the backend's code and message.
 */

export interface InferenceClientOptions {
  /** host:port of the gRPC endpoint. */
  readonly target: string;
  /** Metadata key that names the model. */
  readonly modelHeader: string;
  readonly timeoutMs: number;
  /** Largest response message accepted. */
  readonly maxResponseBytes: number;
  /** @default plaintext */
  readonly credentials?: ChannelCredentials;
}

export interface CallContext {
  readonly model?: string;
  readonly signal: AbortSignal;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

type Callback<T> = (err: ServiceError | null, value?: T) => void;

export class InferenceClient {
  private readonly client: GRPCInferenceServiceClient;

  constructor(private readonly options: InferenceClientOptions) {
    this.client = new GRPCInferenceServiceClient(options.target, options.credentials ?? credentials.createInsecure(), {
      'grpc.max_receive_message_length': options.maxResponseBytes,
      // The REST body limit already bounds what we send; the backend enforces its own limit.
      'grpc.max_send_message_length': -1,
    });
  }

  infer(request: ModelInferRequest, context: CallContext): Promise<ModelInferResponse> {
    const method = GRPCInferenceServiceService.modelInfer;
    // Raw bytes back, decoded here: ts-proto refuses 64-bit integers beyond 2^53 with a bare message we reword.
    return this.call<Buffer>(context, (metadata, options, callback) => this.client.makeUnaryRequest(
      method.path, method.requestSerialize, (bytes: Buffer) => bytes, request, metadata, options, callback,
    )).then(decodeInferResponse);
  }

  modelMetadata(name: string, version: string, context: CallContext): Promise<ModelMetadataResponse> {
    return this.call(context, (metadata, options, callback) => this.client.modelMetadata({ name, version }, metadata, options, callback));
  }

  async modelReady(name: string, version: string, context: CallContext): Promise<boolean> {
    const answer = await this.call<{ ready: boolean }>(context,
      (metadata, options, callback) => this.client.modelReady({ name, version }, metadata, options, callback));
    return answer.ready;
  }

  serverMetadata(context: CallContext): Promise<ServerMetadataResponse> {
    return this.call(context, (metadata, options, callback) => this.client.serverMetadata({}, metadata, options, callback));
  }

  close(): void {
    this.client.close();
  }

  private call<T>(context: CallContext,
    start: (metadata: Metadata, options: { deadline: number }, callback: Callback<T>) => ClientUnaryCall): Promise<T> {
    const metadata = new Metadata();
    if (context.model !== undefined) {
      // gRPC text metadata is printable ASCII; other names go in the header's -bin form, as UTF-8.
      if (PRINTABLE_ASCII.test(context.model)) metadata.set(this.options.modelHeader, context.model);
      else metadata.set(`${this.options.modelHeader}-bin`, Buffer.from(context.model, 'utf8'));
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => call.cancel();
      const call = start(metadata, { deadline: Date.now() + this.options.timeoutMs }, (err, value) => {
        context.signal.removeEventListener('abort', onAbort);
        if (err) reject(toMeshError(err));
        else resolve(value as T);
      });
      if (context.signal.aborted) call.cancel();
      else context.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Decodes a ModelInferResponse, saying plainly when a 64-bit integer in it cannot be a JS number exactly. */
export function decodeInferResponse(bytes: Buffer): ModelInferResponse {
  try {
    return ModelInferResponse.decode(bytes);
  } catch (err) {
    const message = (err as Error).message;
    if (/SAFE_INTEGER/.test(message)) {
      throw internal('the model\'s response holds a 64-bit integer beyond ±(2^53 - 1), which a JSON number cannot carry exactly; '
        + 'it is refused rather than rounded', err);
    }
    throw internal(`the model's response is not a valid ModelInferResponse: ${message}`, err);
  }
}
