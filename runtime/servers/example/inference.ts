import type { Metadata } from '@grpc/grpc-js';
import { BYTES, inferExample, INPUT_NAME, OUTPUT_NAME } from './infer';
import type { LoadedModel, ModelStore } from './model-store';
import type { GRPCInferenceServiceServer } from '../../../proto/gen/grpc_predict_v2';
import { invalidArgument, notFound } from '../../src/errors';
import { VERSION } from '../../src/version';
import { answer } from '../shared/grpc-answer';
import { selectModelId } from '../shared/model-id';

export const SERVER_NAME = 'modelmesh-example-runtime';

/**
 * The model a call is for, loaded. NOT_FOUND names the id: the mesh treats a runtime's NOT_FOUND as "not here"
 * and retries on another copy.
 */
export function requireModel(store: ModelStore, metadata: Metadata, fallback?: string): LoadedModel {
  const modelId = selectModelId(metadata, fallback);
  if (modelId === undefined) {
    throw invalidArgument('no model selected: set the mm-model-id metadata (or the request\'s model name)');
  }
  const model = store.get(modelId);
  if (!model) throw notFound(`model ${modelId} is not loaded in this example runtime`);
  return model;
}

/** inference.GRPCInferenceService (KServe v2) over the loaded example models. */
export function inferenceService(store: ModelStore, inferDelayMs = 0): GRPCInferenceServiceServer {
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
      const model = requireModel(store, call.metadata, call.request.name);
      return {
        name: model.id,
        versions: [],
        platform: 'example',
        inputs: [{ name: INPUT_NAME, datatype: BYTES, shape: [-1] }],
        outputs: [{ name: OUTPUT_NAME, datatype: BYTES, shape: [-1] }],
      };
    }),
    modelInfer: (call, callback) => {
      const run = () => answer(callback, () => {
        const model = requireModel(store, call.metadata, call.request.modelName);
        return inferExample(model.id, model.bytes, call.request);
      });
      if (inferDelayMs > 0) setTimeout(run, inferDelayMs); else run();
    },
  };
}
