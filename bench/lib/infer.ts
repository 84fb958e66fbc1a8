import { Metadata, credentials } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient, ModelInferRequest, ModelInferResponse } from '../../proto/gen/grpc_predict_v2';

/** Bounds a benchmark even if a call hangs. */
export const CALL_DEADLINE_MS = 10_000;

/** One grpc-js channel to `127.0.0.1:port`: it multiplexes every concurrent call on one HTTP/2 connection, as a client would. */
export function inferenceClient(port: number): GRPCInferenceServiceClient {
  return new GRPCInferenceServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
}

/** The example model's request: one BYTES input holding one element. */
export function exampleRequest(input: string): ModelInferRequest {
  return ModelInferRequest.fromPartial({
    inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], contents: { bytesContents: [Buffer.from(input)] } }],
  });
}

/** Metadata naming the model, as a mesh client sends it (runtimes read the same header). */
export function modelMetadata(modelId: string): Metadata {
  const metadata = new Metadata();
  metadata.set('mm-model-id', modelId);
  return metadata;
}

export function modelInfer(client: GRPCInferenceServiceClient, request: ModelInferRequest, metadata: Metadata): Promise<ModelInferResponse> {
  return new Promise((resolve, reject) => {
    // grpc-js filters add headers to the metadata they are given; each call gets its own copy.
    client.modelInfer(request, metadata.clone(), { deadline: Date.now() + CALL_DEADLINE_MS }, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

/** The text of the example model's answer. */
export function answerText(response: ModelInferResponse): string {
  return Buffer.from(response.outputs[0]?.contents?.bytesContents[0] ?? []).toString('utf8');
}

/** One call that must answer `expected`; fails loudly, naming `label`, instead of letting a wrong target be timed. */
export async function expectAnswer(client: GRPCInferenceServiceClient, request: ModelInferRequest, metadata: Metadata, expected: string,
  label: string): Promise<void> {
  const response = await modelInfer(client, request, metadata).catch((err: Error) => {
    throw new Error(`${label} did not answer: ${err.message}`);
  });
  const text = answerText(response);
  if (text !== expected) throw new Error(`${label} answered "${text}", expected "${expected}"`);
}
