import { Metadata, ServiceError, credentials } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient, ModelInferRequest, ModelInferResponse } from '../../proto/gen/grpc_predict_v2';

/** KServe v2 calls as the example model understands them: one BYTES input holding one element. */

export function inferenceClient(port: number, options: Record<string, number> = {}): GRPCInferenceServiceClient {
  return new GRPCInferenceServiceClient(`127.0.0.1:${port}`, credentials.createInsecure(), options);
}

export function bytesRequest(input: string, modelName = ''): ModelInferRequest {
  return ModelInferRequest.fromPartial({
    modelName,
    inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], contents: { bytesContents: [Buffer.from(input)] } }],
  });
}

/** The text of the first output's first element. */
export const outputText = (response: ModelInferResponse): string => Buffer.from(response.outputs[0].contents!.bytesContents[0]).toString();

/** ModelInfer with the given metadata (e.g. `mm-model-id`); rejects with the ServiceError. */
export function infer(client: GRPCInferenceServiceClient, request: ModelInferRequest, headers: Record<string, string> = {},
  timeoutMs = 30_000): Promise<ModelInferResponse> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve, reject) => {
    client.modelInfer(request, md, { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, res) => (err ? reject(err) : resolve(res)));
  });
}

/** Sends `input` to the model with `mm-model-id: modelId` and resolves with the answer's text. */
export async function inferModel(client: GRPCInferenceServiceClient, modelId: string, input: string, timeoutMs = 20_000): Promise<string> {
  return outputText(await infer(client, bytesRequest(input), { 'mm-model-id': modelId }, timeoutMs));
}
