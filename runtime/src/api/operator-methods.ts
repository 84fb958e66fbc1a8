import { status } from '@grpc/grpc-js';
import { UnaryMethod, unaryMethod } from './unary';
import { ClusterStatusResponse, InstanceStatus, ListModelsResponse, MeshOperatorService, ModelSummary } from '../../../proto/gen/operator';
import { Cluster } from '../cluster/cluster';
import { MeshError } from '../errors';
import { modelCounts } from '../registry/model-state';
import { InstanceRecord, ModelRecord } from '../registry/records';
import { Registry } from '../registry/registry';

/** `modelmesh.operator.MeshOperator`: the cluster and the registry as this instance sees them, for operator tools. */

export interface OperatorMethodsOptions {
  readonly serviceName: string;
  readonly selfId: string;
  readonly registry: Registry;
  readonly cluster: Cluster;
  /** This instance's own record, fresh (the cluster view holds only what was last published). */
  readonly self: () => InstanceRecord;
  readonly leaderId: () => string | undefined;
  readonly failureExpiryMs: number;
}

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1_000;

function instanceStatus(instanceId: string, r: InstanceRecord, leader: boolean): InstanceStatus {
  return {
    instanceId,
    address: r.address,
    capacityBytes: r.capacity,
    usedBytes: r.used,
    copies: r.copies,
    loadsInFlight: r.loadsInFlight,
    requestsPerMinute: r.rpm,
    requestsInFlight: r.requestsInFlight,
    shuttingDown: r.shuttingDown,
    leader,
    version: r.version,
    zone: r.zone ?? '',
    startTimeMs: r.startTime,
    lruTimeMs: r.lruTime,
    labels: [...r.labels],
  };
}

export function modelSummary(modelId: string, r: ModelRecord, now: number, failureExpiryMs: number): ModelSummary {
  const on = (state: string) => Object.entries(r.copies).filter(([, c]) => c.state === state).map(([id]) => id).sort();
  return {
    modelId,
    type: r.type,
    loadedOn: on('loaded'),
    loadingOn: on('loading'),
    failures: Object.entries(r.failures).filter(([, f]) => now - f.time < failureExpiryMs).sort(([a], [b]) => a.localeCompare(b))
      .map(([instanceId, f]) => ({ instanceId, message: f.message, timeMs: f.time })),
    sizeBytes: r.size ?? 0,
    lastUsedMs: r.lastUsed,
    refs: r.refs,
  };
}

export function operatorMethods(o: OperatorMethodsOptions): Map<string, UnaryMethod> {
  const s = MeshOperatorService;
  const clusterStatus = (): ClusterStatusResponse => {
    const leaderId = o.leaderId();
    const instances = new Map(o.cluster.live());
    instances.set(o.selfId, o.self());
    const counts = modelCounts(o.registry.models.values(), Date.now(), o.failureExpiryMs);
    return {
      serviceName: o.serviceName,
      answeredBy: o.selfId,
      instances: [...instances].sort(([a], [b]) => a.localeCompare(b)).map(([id, r]) => instanceStatus(id, r, id === leaderId)),
      models: counts.managed,
      vmodels: o.registry.vmodels.size,
      modelsLoaded: counts.loaded,
      modelsWithFailure: counts.withFailure,
    };
  };
  const listModels = (prefix: string, limit: number, startAfter: string): ListModelsResponse => {
    if (limit < 0 || limit > MAX_PAGE) throw new MeshError(status.INVALID_ARGUMENT, `limit must be between 0 and ${MAX_PAGE}, got ${limit}`);
    const pageSize = limit || DEFAULT_PAGE;
    const ids = [...o.registry.models.ids()].filter((id) => id.startsWith(prefix) && id > startAfter).sort();
    const page = ids.slice(0, pageSize);
    const now = Date.now();
    return {
      models: page.map((id) => modelSummary(id, o.registry.models.get(id)!, now, o.failureExpiryMs)),
      nextStartAfter: ids.length > pageSize ? page[page.length - 1] : '',
    };
  };
  return new Map([
    [s.clusterStatus.path, unaryMethod('ClusterStatus', s.clusterStatus, clusterStatus)],
    [s.listModels.path, unaryMethod('ListModels', s.listModels, (req) => listModels(req.prefix, req.limit, req.startAfter))],
  ]);
}
