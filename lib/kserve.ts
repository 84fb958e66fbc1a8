import { k8s } from 'cdk8s-plus-28';
import * as kserve from './imports/serving.kserve.io';
import { RuntimeDefinition } from './runtimes';

/**
 * Conversion of a runtime definition into the generated KServe `ServingRuntime` spec. The generated classes wrap
 * quantities and int-or-string ports in their own value classes, so the Kubernetes container (from cdk8s-plus-28) is
 * rendered to JSON and those few fields are re-wrapped.
 */

type Json = Record<string, any>;

function quantities<T>(values: Json | undefined, wrap: { fromString(v: string): T; fromNumber(v: number): T }) {
  if (!values) return undefined;
  return Object.fromEntries(Object.entries(values).map(([key, value]) =>
    [key, typeof value === 'number' ? wrap.fromNumber(value) : wrap.fromString(String(value))]));
}

function port<T>(value: unknown, wrap: { fromString(v: string): T; fromNumber(v: number): T }): T {
  return typeof value === 'number' ? wrap.fromNumber(value) : wrap.fromString(String(value));
}

function probe(json: Json | undefined, httpPort: any, tcpPort: any): any {
  if (!json) return undefined;
  return {
    ...json,
    ...(json.httpGet ? { httpGet: { ...json.httpGet, port: port(json.httpGet.port, httpPort) } } : {}),
    ...(json.tcpSocket ? { tcpSocket: { ...json.tcpSocket, port: port(json.tcpSocket.port, tcpPort) } } : {}),
  };
}

function container(source: k8s.Container): kserve.ServingRuntimeSpecContainers {
  const json = k8s.toJson_Container(source) as Json;
  return {
    ...json,
    name: json.name,
    env: json.env?.map((env: Json) => env.valueFrom?.resourceFieldRef?.divisor === undefined ? env : {
      ...env,
      valueFrom: {
        ...env.valueFrom,
        resourceFieldRef: {
          ...env.valueFrom.resourceFieldRef,
          divisor: port(env.valueFrom.resourceFieldRef.divisor, kserve.ServingRuntimeSpecContainersEnvValueFromResourceFieldRefDivisor),
        },
      },
    }),
    resources: json.resources ? {
      ...json.resources,
      limits: quantities(json.resources.limits, kserve.ServingRuntimeSpecContainersResourcesLimits),
      requests: quantities(json.resources.requests, kserve.ServingRuntimeSpecContainersResourcesRequests),
    } : undefined,
    livenessProbe: probe(json.livenessProbe, kserve.ServingRuntimeSpecContainersLivenessProbeHttpGetPort,
      kserve.ServingRuntimeSpecContainersLivenessProbeTcpSocketPort),
    startupProbe: probe(json.startupProbe, kserve.ServingRuntimeSpecContainersStartupProbeHttpGetPort,
      kserve.ServingRuntimeSpecContainersStartupProbeTcpSocketPort),
  };
}

/** The `spec` of the KServe ServingRuntime object describing `runtime`. */
export function servingRuntimeSpec(runtime: RuntimeDefinition, replicas: number | undefined): kserve.ServingRuntimeSpec {
  const adapter = runtime.builtInAdapter;
  return {
    supportedModelFormats: runtime.supportedModelFormats.map((format) => ({ ...format })),
    multiModel: true,
    protocolVersions: runtime.protocolVersions.length > 0 ? [...runtime.protocolVersions] : undefined,
    grpcEndpoint: runtime.grpcEndpoint,
    grpcDataEndpoint: runtime.grpcDataEndpoint,
    containers: runtime.containers.map(container),
    builtInAdapter: adapter ? {
      serverType: adapter.serverType,
      runtimeManagementPort: adapter.runtimeManagementPort,
      memBufferBytes: adapter.memBufferBytes,
      modelLoadingTimeoutMillis: adapter.modelLoadingTimeoutMillis,
      env: adapter.env?.map((env) => ({ name: env.name, value: env.value })),
    } : undefined,
    storageHelper: !adapter && !runtime.storageHelper ? { disabled: true } : undefined,
    replicas,
  };
}
