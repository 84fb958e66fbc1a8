import { status } from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthService } from '../../../proto/gen/health';
import { ModelMeshService, ModelStatusInfo, ModelStatusInfo_ModelStatus } from '../../../proto/gen/model-mesh';
import { LocalCopies } from '../cache/local-copies';
import { toMeshError } from '../errors';
import { IncomingHeaders } from '../h2/server';
import { LoadPriority } from '../loader';
import { headerText } from './grpc-wire';
import { UnaryMethod, unaryMethod } from './unary';
import { CallContext, Management } from '../mesh/management';
import { LOAD_HERE_HEADER, LOAD_PRIORITY_HEADER } from '../mesh/peers';

/** The management API (mmesh.ModelMesh) and gRPC health as unary methods of the front door, keyed by path. */

export interface ManagementMethodsOptions {
  readonly management: Management;
  readonly localCopies: LocalCopies;
  /** Whether this instance is serving (joined and its runtime READY). */
  readonly isServing: () => boolean;
}

function context(headers: IncomingHeaders): CallContext {
  return { balanced: headerText(headers, 'mm-balanced') === 'true' };
}

/** Another instance placed this model here: load it locally and answer with the outcome. */
async function loadHere(localCopies: LocalCopies, modelId: string, headers: IncomingHeaders): Promise<ModelStatusInfo> {
  const priority: LoadPriority = headerText(headers, LOAD_PRIORITY_HEADER) === 'request' ? 'request' : 'background';
  try {
    await localCopies.loadHere(modelId, priority);
    return { status: ModelStatusInfo_ModelStatus.LOADED, errors: [], modelCopyInfos: [] };
  } catch (err) {
    const e = toMeshError(err);
    // A failed load is an answer, not a transport failure: the placer must not mistake it for an unreachable peer.
    if (e.code === status.NOT_FOUND) throw e;
    return { status: ModelStatusInfo_ModelStatus.LOADING_FAILED, errors: [e.message], modelCopyInfos: [] };
  }
}

export function managementMethods(o: ManagementMethodsOptions): Map<string, UnaryMethod> {
  const s = ModelMeshService;
  const serving = () => (o.isServing() ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING);
  return new Map([
    [s.registerModel.path, unaryMethod('registerModel', s.registerModel, (req, h) => o.management.registerModel(req, context(h)))],
    [s.unregisterModel.path, unaryMethod('unregisterModel', s.unregisterModel, async (req) => {
      await o.management.unregisterModel(req.modelId);
      return {};
    })],
    [s.getModelStatus.path, unaryMethod('getModelStatus', s.getModelStatus, (req) => o.management.getModelStatus(req.modelId))],
    [s.ensureLoaded.path, unaryMethod('ensureLoaded', s.ensureLoaded, (req, h) => (headerText(h, LOAD_HERE_HEADER) === 'true'
      ? loadHere(o.localCopies, req.modelId, h)
      : o.management.ensureLoaded(req, context(h))))],
    [s.setVModel.path, unaryMethod('setVModel', s.setVModel, (req, h) => o.management.setVModel(req, context(h)))],
    [s.deleteVModel.path, unaryMethod('deleteVModel', s.deleteVModel, async (req) => {
      await o.management.deleteVModel(req);
      return {};
    })],
    [s.getVModelStatus.path, unaryMethod('getVModelStatus', s.getVModelStatus, (req) => o.management.getVModelStatus(req))],
    [HealthService.check.path, unaryMethod('Health/Check', HealthService.check, () => ({ status: serving() }))],
  ]);
}
