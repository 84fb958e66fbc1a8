import type { ModelStore } from './model-store';
import type { ExampleRuntimeOptions } from './options';
import { ModelRuntimeServer, RuntimeStatusResponse, RuntimeStatusResponse_Status } from '../../../proto/gen/model-runtime';
import { VERSION } from '../../src/version';
import { answer, settle } from '../shared/grpc-answer';

/** The runtimeStatus answer, once the runtime holds nothing. */
export function readyStatus(options: ExampleRuntimeOptions): RuntimeStatusResponse {
  return {
    status: RuntimeStatusResponse_Status.READY,
    capacityInBytes: options.capacityBytes,
    maxLoadingConcurrency: options.maxLoadingConcurrency,
    modelLoadingTimeoutMs: options.loadTimeoutMs,
    defaultModelSizeInBytes: options.defaultModelSizeBytes,
    runtimeVersion: VERSION,
    numericRuntimeVersion: 0,
    // No id injection: this runtime reads the concrete model id from the mm-model-id header the mesh always sets,
    // so no request body needs rewriting, and every data-plane method (KServe v2 and ExampleStream) is allowed.
    methodInfos: {},
    limitModelConcurrency: options.modelConcurrency !== undefined,
    allowAnyMethod: true,
  };
}

/** mmesh.ModelRuntime: the SPI through which the mesh manages this runtime's models. */
export function modelRuntimeService(store: ModelStore, options: ExampleRuntimeOptions): ModelRuntimeServer {
  return {
    // The mesh asks at start-up and trusts that READY means "holds nothing": purge first.
    runtimeStatus: (_call, callback) => answer(callback, () => {
      store.purge('runtimeStatus (the mesh is starting and expects an empty runtime)');
      return readyStatus(options);
    }),
    loadModel: (call, callback) => settle(callback, async () => {
      const model = await store.load(call.request);
      return { sizeInBytes: model.sizeInBytes, maxConcurrency: options.modelConcurrency ?? 0 };
    }),
    unloadModel: (call, callback) => settle(callback, async () => {
      await store.unload(call.request.modelId);
      return {};
    }),
    predictModelSize: (call, callback) => settle(callback, async () => ({ sizeInBytes: await store.predictSize(call.request.modelPath) })),
    modelSize: (call, callback) => answer(callback, () => ({ sizeInBytes: store.sizeOf(call.request.modelId) })),
  };
}
