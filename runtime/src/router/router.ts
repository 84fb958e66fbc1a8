import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { ClientResponse } from './client-response';
import { ConcurrencyGate } from './concurrency-gate';
import { DataplaneConfig } from './dataplane-config';
import { RequestHeaders, forwardOnce } from './forward';
import { spliceString } from './protobuf-path';
import { RequestBody } from './request-body';
import { RoutingId, routingIdFromHeaders, routingIdFromMessage } from './routing-id';
import { SessionPool, Upstream } from './sessions';
import { RoutingHeaders } from '../../../lib/contract';
import { formatGrpcTimeout, frameMessage, parseGrpcTimeout } from '../api/grpc-wire';
import { LocalCopies } from '../cache/local-copies';
import { Cluster } from '../cluster/cluster';
import { MeshError, toMeshError } from '../errors';
import { IncomingHeaders, ServerStream } from '../h2/server';
import { RuntimeInfo } from '../loader';
import { Logger } from '../log';
import { Placer } from '../mesh/placer';
import { RateTracker } from '../mesh/rates';
import { CallRecord, MeshMetrics, codeName } from '../metrics/mesh-metrics';
import { chooseServingCopy } from '../placement';
import { activeFailures, loadedCopies } from '../registry/model-state';
import type { ModelRecord } from '../registry/records';
import { Registry } from '../registry/registry';

/**
 * The data plane: every call that is not a management method. Resolves the model (header or request field; vmodel
 * → its active model), picks a copy (local first, else the least busy loaded copy), loads one just in time on a
 * miss, and pipes the call's bytes to the local runtime or to the peer holding the copy. Calls that failed before
 * any answer reached the caller are retried on another copy, a bounded number of times, and end with the real
 * cause's status.
 */

/** Marks a call forwarded by another instance: it must be served here or refused, never forwarded again. */
export const FORWARDED_BY_HEADER = 'mm-forwarded-by';

/** Carries a call's id across hops (the caller's, else one the first instance makes). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Every method of the KServe v2 gRPC service is unary. */
const KSERVE_V2_SERVICE = 'inference.GRPCInferenceService/';

export interface RouterOptions {
  readonly selfId: string;
  readonly registry: Registry;
  readonly cluster: Cluster;
  readonly localCopies: LocalCopies;
  readonly placer: Placer;
  readonly sessions: SessionPool;
  readonly runtimeData: Upstream;
  /** Peers' front doors serve TLS (this instance's does). */
  readonly peerTls: boolean;
  readonly runtime: RuntimeInfo;
  readonly dataplane: DataplaneConfig;
  readonly maxMessageSize: number;
  /** Deadline of calls that carry no grpc-timeout. */
  readonly defaultTimeoutMs: number;
  /** Copies tried per call before giving up. */
  readonly maxAttempts: number;
  readonly failureExpiryMs: number;
  /** Counts requests served by local copies, for scale-out. */
  readonly rates: RateTracker;
  /** Calls that may wait for a copy at its concurrency limit before further calls are refused. */
  readonly maxQueuedPerCopy: number;
  readonly metrics: MeshMetrics;
  /** Log one line per data-plane call (upstream's MM_LOG_EACH_INVOKE). */
  readonly logEachCall: boolean;
  readonly log: Logger;
}

/** What one call did, for its metrics and for cancelling its current attempt. */
interface CallState {
  /** The caller's `x-request-id`, or one made here; passed to peers and the model server so logs line up. */
  readonly requestId: string;
  cancelAttempt?: () => void;
  destination: CallRecord['destination'];
  modelId?: string;
  vModelId?: string;
}

interface Target {
  readonly instanceId: string;
  readonly local: boolean;
  readonly upstream: Upstream;
}

function peerUpstream(address: string, tls: boolean): Upstream {
  const i = address.lastIndexOf(':');
  return { kind: 'tcp', host: address.slice(0, i), port: Number(address.slice(i + 1)), tls };
}

const isVisibleAscii = (text: string) => /^[\x20-\x7e]*$/.test(text);

export class Router {
  /** Calls this instance has in flight to each peer, for picking the least busy copy. */
  private readonly inFlight = new Map<string, number>();
  private forwarding = 0;
  private readonly gate: ConcurrencyGate;

  constructor(private readonly o: RouterOptions) {
    this.gate = new ConcurrencyGate(o.maxQueuedPerCopy);
  }

  /** Calls being forwarded right now, to the local runtime or to peers. */
  get requestsInFlight(): number {
    return this.forwarding;
  }

  readonly handle = (stream: ServerStream, headers: IncomingHeaders): void => {
    const response = new ClientResponse(stream);
    const given = headers[REQUEST_ID_HEADER];
    const call: CallState = { requestId: typeof given === 'string' && given ? given : randomUUID(), destination: 'none' };
    this.route(stream, headers, response, call).catch((err: unknown) => {
      const e = toMeshError(err);
      if (e.code === status.INTERNAL || e.code === status.UNKNOWN) {
        this.o.log.warn('data-plane call failed', { path: headers[':path'], requestId: call.requestId, err: e });
      }
      response.finishWithStatus(e.code, e.message);
    });
  };

  private async route(stream: ServerStream, headers: IncomingHeaders, response: ClientResponse, call: CallState): Promise<void> {
    const path = String(headers[':path'] ?? '');
    const method = path.slice(1);
    const timeoutMs = parseGrpcTimeout(headers['grpc-timeout']) ?? this.o.defaultTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const body = new RequestBody(stream, this.o.maxMessageSize);
    const started = performance.now();
    const timer = setTimeout(() => {
      call.cancelAttempt?.();
      response.finishWithStatus(status.DEADLINE_EXCEEDED, `deadline of ${timeoutMs} ms exceeded for ${method}`);
    }, timeoutMs);
    stream.handlers.close = () => {
      clearTimeout(timer);
      call.cancelAttempt?.();
      const record = {
        method,
        code: response.statusCode,
        ms: performance.now() - started,
        requestBytes: body.received,
        responseBytes: response.bytesSent,
        destination: call.destination,
        modelId: call.modelId,
        vModelId: call.vModelId,
      };
      this.o.metrics.call(record);
      if (this.o.logEachCall) this.o.log.info('call', { ...record, code: codeName(record.code), ms: Math.round(record.ms * 1000) / 1000, requestId: call.requestId });
    };

    try {
      const rpc = this.o.dataplane.rpcConfigs.get(method);
      if (!rpc && !this.o.dataplane.allowOtherRpcs) throw new MeshError(status.UNIMPLEMENTED, `method ${method} is not allowed by the data-plane configuration`);
      const injectionPath = this.o.runtime.methods.get(method);
      if (!this.o.runtime.allowAnyMethod && injectionPath === undefined) {
        throw new MeshError(status.UNIMPLEMENTED, `method ${method} is not served by this mesh's model server`);
      }
      let id = routingIdFromHeaders(headers);
      const needMessage = (!id && rpc !== undefined) || (injectionPath !== undefined && injectionPath.length > 0);
      const message = needMessage ? await body.firstMessage() : undefined;
      if (!id) {
        if (!rpc || !message) {
          throw new MeshError(status.INVALID_ARGUMENT, `no model named for ${method}: set the ${RoutingHeaders.MODEL_ID} or ${RoutingHeaders.VMODEL_ID} header`);
        }
        id = routingIdFromMessage(message, method, rpc);
      }
      const forwardedBy = headers[FORWARDED_BY_HEADER] !== undefined;
      await this.serve(id, forwardedBy, headers, body, message, injectionPath, deadline, response, call);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The concrete model a vmodel id (or a name that may be either) names now. */
  private async resolve(id: Extract<RoutingId, { kind: 'vmodel' }>): Promise<string> {
    const known = this.o.registry.vmodels.get(id.id);
    if (known) return known.active;
    // A name that is a known model needs no store round trip on every call; only an unknown name is read strongly.
    if (id.orModel && this.o.registry.models.get(id.id)) return id.id;
    const vmodel = (await this.o.registry.vmodels.read(id.id))?.record;
    if (vmodel) return vmodel.active;
    if (id.orModel) return id.id;
    throw new MeshError(status.NOT_FOUND, `vmodel ${id.id} not found`);
  }

  private target(instanceId: string): Target | undefined {
    if (instanceId === this.o.selfId) return { instanceId, local: true, upstream: this.o.runtimeData };
    const peer = this.o.cluster.get(instanceId);
    return peer && !peer.shuttingDown ? { instanceId, local: false, upstream: peerUpstream(peer.address, this.o.peerTls) } : undefined;
  }

  private async serve(id: RoutingId, forwardedBy: boolean, headers: IncomingHeaders, body: RequestBody,
    message: Buffer | undefined, injectionPath: readonly number[] | undefined, deadline: number, response: ClientResponse,
    call: CallState): Promise<void> {
    const excluded = new Set<string>();
    let lastFailure: MeshError | undefined;
    let attempts = 0;
    let loads = 0;
    const unary = this.knownUnary(headers);
    // A unary request is complete before anyone can answer it: sending its headers and body upstream together saves
    // the model server a wake-up and a read.
    if (unary && !body.isComplete) await body.complete();
    while (!response.done) {
      if (body.error) throw body.error;
      // A model id needs no lookup: no promise, no extra turn on the hot path.
      const modelId = id.kind === 'model' ? id.id : await this.resolve(id);
      call.modelId = modelId;
      // A name that turned out to be a model id (REST, or model_name in the request) was no vmodel.
      call.vModelId = id.kind === 'vmodel' && !(id.orModel && modelId === id.id) ? id.id : undefined;
      const record = this.o.registry.models.get(modelId) ?? (await this.o.registry.models.read(modelId))?.record;
      if (!record) throw new MeshError(status.NOT_FOUND, id.kind === 'vmodel' && !id.orModel ? `the active model ${modelId} of vmodel ${id.id} is not registered` : `model ${modelId} not found`);

      const localCopy = this.o.localCopies.cache.get(modelId);
      const candidates = loadedCopies(record).filter((i) => !excluded.has(i) && (i !== this.o.selfId || localCopy?.state === 'loaded'));
      if (localCopy?.state === 'loaded' && !excluded.has(this.o.selfId) && !candidates.includes(this.o.selfId)) candidates.push(this.o.selfId);
      if (forwardedBy) {
        // Another instance chose this one: serve the local copy or send the call back, never onward.
        if (!candidates.includes(this.o.selfId)) {
          throw new MeshError(status.UNAVAILABLE, `model ${modelId} has no loaded copy on instance ${this.o.selfId}`, true);
        }
        candidates.splice(0, candidates.length, this.o.selfId);
      }
      const choice = chooseServingCopy(candidates.map((instanceId) => ({ instanceId, inFlight: this.inFlight.get(instanceId) ?? 0 })), this.o.selfId);
      const target = choice && this.target(choice.instanceId);
      if (!target) {
        if (choice) {
          excluded.add(choice.instanceId);
          continue;
        }
        if (loads++ >= this.o.maxAttempts) throw lastFailure ?? new MeshError(status.UNAVAILABLE, `no copy of model ${modelId} could serve the call`);
        const missStarted = performance.now();
        try {
          lastFailure = await this.loadJustInTime(modelId, deadline, excluded) ?? lastFailure;
        } finally {
          this.o.metrics.cacheMiss(performance.now() - missStarted, modelId);
        }
        continue;
      }

      attempts++;
      const outgoing = this.outgoingHeaders(headers, modelId, target, deadline, call.requestId);
      // A runtime that asked for the model id inside the request (methodInfos idInjectionPath) gets it spliced in.
      const inject = injectionPath !== undefined && injectionPath.length > 0 && message !== undefined && target.local;
      const replacement = inject ? frameMessage(spliceString(message, injectionPath, modelId)) : undefined;
      const canRetry = () => attempts < this.o.maxAttempts && body.canReplay && !forwardedBy;
      if (target.local && localCopy) {
        if (this.gate.mustWait(localCopy)) await this.gate.admit(localCopy);
        if (response.done) {
          // The call ended while it waited: hand its turn to the next waiter.
          this.gate.release(modelId);
          return;
        }
      }
      this.begin(target, modelId);
      call.destination = target.local ? 'local' : 'peer';
      let outcome;
      try {
        const connection = this.o.sessions.get(target.upstream);
        const holdBytes = unary ? this.o.maxMessageSize + 5 : 0;
        const attempt = forwardOnce(connection, outgoing, body, replacement, response, canRetry, { holdBytes });
        call.cancelAttempt = attempt.cancel;
        outcome = await attempt.outcome;
      } finally {
        this.end(target, modelId);
      }
      if (outcome.kind === 'relayed') return;
      lastFailure = new MeshError(outcome.code, `${target.local ? 'model server' : `instance ${target.instanceId}`}: ${outcome.message || 'unavailable'}`, true);
      this.o.log.debug('attempt failed; trying another copy', { modelId, instance: target.instanceId, code: outcome.code, err: lastFailure });
      excluded.add(target.instanceId);
      this.o.metrics.retry(outcome.connectFailure ? 'connect' : outcome.code === status.NOT_FOUND ? 'not-found' : 'unavailable');
      if (outcome.connectFailure) {
        this.o.sessions.discard(target.upstream);
        if (!target.local) this.o.placer.markSuspect(target.instanceId);
      }
      if (target.local && outcome.code === status.NOT_FOUND) {
        // The runtime no longer has a copy the mesh thought loaded: drop it so nobody else is sent here for it.
        void this.o.localCopies.drop(modelId, 'the model server reported it not found');
      }
      if (!canRetry()) throw lastFailure;
    }
  }

  /**
   * Places a copy (on this instance when it has room: the call is here) and waits until one this call may use is loaded, or
   * no usable copy is left loading. Resolves with the load failure to report if the caller gives up, and throws
   * when no instance can take the model at all.
   */
  private async loadJustInTime(modelId: string, deadline: number, excluded: ReadonlySet<string>): Promise<MeshError | undefined> {
    // The copy here counts as soon as the local cache has it loaded, before the registry records it (one store write
    // less on a miss), and only then: the registry can lag behind (a model server that just died leaves entries).
    const usable = (i: string) => !excluded.has(i);
    const servable = (r: ModelRecord, i: string) => usable(i)
      && (i === this.o.selfId ? this.o.localCopies.cache.get(modelId)?.state === 'loaded' : r.copies[i]?.state === 'loaded');
    // The copy here may be servable before the registry lists it at all (a quick load is never claimed there).
    const anyServable = (r: ModelRecord) => servable(r, this.o.selfId) || Object.keys(r.copies).some((i) => servable(r, i));
    const placed = await this.o.placer.ensureCopy(modelId, { priority: 'request', preferLocal: true, excluded, callWaitsHere: true });
    if (placed.kind === 'none') throw this.loadFailure(modelId, placed.reason);
    const record = await this.o.registry.models.waitFor(modelId,
      (r) => !r || anyServable(r) || !this.o.placer.hasCopyUnderWay(modelId, r, excluded),
      deadline, `model ${modelId} to load`).catch((err: MeshError) => {
      throw err.code === status.DEADLINE_EXCEEDED ? new MeshError(status.DEADLINE_EXCEEDED, `deadline exceeded while model ${modelId} was loading`) : err;
    });
    if (!record) throw new MeshError(status.NOT_FOUND, `model ${modelId} was unregistered while it loaded`);
    return anyServable(record) ? undefined : this.loadFailure(modelId, 'no instance could load it');
  }

  /** The error for a model that could not be loaded: the runtimes' own messages when there are any. */
  private loadFailure(modelId: string, fallback: string): MeshError {
    const record = this.o.registry.models.get(modelId);
    const failures = record ? activeFailures(record, Date.now(), this.o.failureExpiryMs).map(([instance, f]) => `${f.message} (on instance ${instance})`) : [];
    return failures.length > 0
      ? new MeshError(status.INTERNAL, `model ${modelId} could not be loaded: ${failures.join('; ')}`)
      : new MeshError(status.UNAVAILABLE, `model ${modelId} could not be loaded: ${fallback}`, true);
  }

  /**
   * Calls known to be unary (KServe v2 inference, methods named in the data-plane config) may have their answer held
   * until complete: a copy that dies mid-answer can then be replaced. Other methods may stream, so their bytes flow
   * as they come.
   */
  private knownUnary(headers: IncomingHeaders): boolean {
    const method = String(headers[':path'] ?? '').slice(1);
    return method.startsWith(KSERVE_V2_SERVICE) || this.o.dataplane.rpcConfigs.has(method);
  }

  private outgoingHeaders(incoming: IncomingHeaders, modelId: string, target: Target, deadline: number, requestId: string): RequestHeaders {
    const out: RequestHeaders = [[':method', 'POST'], [':path', String(incoming[':path'])]];
    for (const name in incoming) {
      if (name.startsWith(':') || name.startsWith('mm-') || name === 'grpc-timeout' || name === REQUEST_ID_HEADER) continue;
      const value = incoming[name];
      if (typeof value === 'string') out.push([name, value]);
      else if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    }
    out.push(['grpc-timeout', formatGrpcTimeout(deadline - Date.now())]);
    out.push([`${RoutingHeaders.MODEL_ID}-bin`, Buffer.from(modelId, 'utf8').toString('base64')]);
    if (isVisibleAscii(modelId)) out.push([RoutingHeaders.MODEL_ID, modelId]);
    if (!target.local) out.push([FORWARDED_BY_HEADER, this.o.selfId]);
    out.push([REQUEST_ID_HEADER, requestId]);
    return out;
  }

  private begin(target: Target, modelId: string): void {
    this.forwarding++;
    if (target.local) {
      const copy = this.o.localCopies.cache.touch(modelId, Date.now());
      if (copy) copy.inFlight++;
      this.o.rates.record(modelId);
    } else {
      this.inFlight.set(target.instanceId, (this.inFlight.get(target.instanceId) ?? 0) + 1);
    }
  }

  private end(target: Target, modelId: string): void {
    this.forwarding--;
    if (target.local) {
      const copy = this.o.localCopies.cache.get(modelId);
      if (copy && copy.inFlight > 0) copy.inFlight--;
      this.gate.release(modelId);
    } else {
      const n = (this.inFlight.get(target.instanceId) ?? 1) - 1;
      if (n > 0) this.inFlight.set(target.instanceId, n); else this.inFlight.delete(target.instanceId);
    }
  }
}

