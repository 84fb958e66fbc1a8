import type { Metadata } from '@grpc/grpc-js';
import { inferOnnx } from './infer';
import type { OnnxModelStore } from './model-store';
import { metadataShape, TensorSpec } from './tensors';
import type { GRPCInferenceServiceServer, ModelMetadataResponse_TensorMetadata } from '../../../proto/gen/grpc_predict_v2';
import { invalidArgument, notFound } from '../../src/errors';
import { VERSION } from '../../src/version';
import { answer, settle } from '../shared/grpc-answer';
import { selectModelId } from '../shared/model-id';

export const SERVER_NAME = 'modelmesh-onnx-runtime';
/** The platform name Triton reports for ONNX models, so clients written against it read ours the same way. */
export const PLATFORM = 'onnxruntime_onnx';

/** The id a call is for: the mesh's mm-model-id header, else the request's model name. */
function requireModelId(metadata: Metadata, fallback: string): string {
  const modelId = selectModelId(metadata, fallback);
  if (modelId === undefined) throw invalidArgument('no model selected: set the mm-model-id metadata (or the request\'s model name)');
  return modelId;
}

/** KServe v2 metadata of the tensors KServe v2 can carry. */
function tensorMetadata(specs: readonly TensorSpec[]): ModelMetadataResponse_TensorMetadata[] {
  return specs.filter((spec) => spec.datatype).map((spec) => ({ name: spec.name, datatype: spec.datatype!.name, shape: metadataShape(spec) }));
}

/**
 * inference.GRPCInferenceService (KServe v2) over the loaded ONNX models. A model that is not loaded is NOT_FOUND:
 * the mesh takes that as "not on this copy" and retries elsewhere.
 */
export function inferenceService(store: OnnxModelStore): GRPCInferenceServiceServer {
  return {
    serverLive: (_call, callback) => callback(null, { live: true }),
    serverReady: (_call, callback) => callback(null, { ready: true }),
    serverMetadata: (_call, callback) => callback(null, { name: SERVER_NAME, version: VERSION, extensions: [] }),
    // An unknown model is "not ready" rather than an error, as KServe servers answer.
    modelReady: (call, callback) => answer(callback, () => {
      const modelId = selectModelId(call.metadata, call.request.name);
      return { ready: modelId !== undefined && store.get(modelId) !== undefined };
    }),
    modelMetadata: (call, callback) => answer(callback, () => {
      const modelId = requireModelId(call.metadata, call.request.name);
      const model = store.get(modelId);
      if (!model) throw notFound(`model ${modelId} is not loaded in this ONNX runtime`);
      return { name: model.id, versions: [], platform: PLATFORM, inputs: tensorMetadata(model.inputs), outputs: tensorMetadata(model.outputs) };
    }),
    modelInfer: (call, callback) => settle(callback, () =>
      store.use(requireModelId(call.metadata, call.request.modelName), (model) => inferOnnx(model, call.request))),
  };
}
