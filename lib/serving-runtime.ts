import { ApiObject, Duration, Lazy } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ContainerNames, Mounts, ObjectNames, PodLabels, Ports, ProbePaths } from './contract';
import { checkName, invalid } from './errors';
import { EtcdBinding } from './etcd-connection';
import * as kserve from './imports/serving.kserve.io';
import { servingRuntimeSpec } from './kserve';
import { meshContainer, MeshTls } from './mesh-container';
import { runtimeLabels } from './model-types';
import { formatBytes, parseBytes } from './quantity';
import { PullerPlacement, RuntimeDefinition } from './runtimes';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from './security';
import { StorageConfig } from './storage-config';

/** What a serving runtime takes from the mesh it belongs to (`ModelMesh` provides it). */
export interface MeshContext {
  /** The mesh's name: the Service name and `MM_SERVICE_NAME`. */
  readonly serviceName: string;
  /** Image of the mesh container. */
  readonly meshImage: string;
  /** Image of the built-in adapters and the puller. */
  readonly helperImage: string;
  /** How the mesh reaches etcd. */
  readonly etcd: EtcdBinding;
  /** The storage entries runtimes pull models from. */
  readonly storage: StorageConfig;
  /** Whether the mesh exposes Prometheus metrics on 2112. */
  readonly metrics: boolean;
  /** Whether the mesh serves KServe v2 REST on 8008. */
  readonly rest: boolean;
  /** TLS on the mesh's front door. */
  readonly tls?: MeshTls;
  /** Time a leaving pod has to move its models elsewhere. */
  readonly shutdownTimeout: Duration;
  /** Largest gRPC message accepted, in bytes. */
  readonly grpcMaxMessageSize: number;
  /** Service account of the runtime pods (no API token is mounted). */
  readonly serviceAccountName: string;
  /** Resources of the mesh container. */
  readonly meshResources: k8s.ResourceRequirements;
  /** Owner of vmodels created without one. */
  readonly defaultVModelOwner: string;
  /** Labels every object of the mesh carries. */
  readonly commonLabels: Readonly<Record<string, string>>;
}

/** Horizontal autoscaling of a runtime's Deployment on CPU. */
export interface RuntimeAutoscaling {
  /** Lowest number of pods. @default 2 */
  readonly minReplicas?: number;
  /** Highest number of pods. */
  readonly maxReplicas: number;
  /** Target average CPU utilization, in percent of the requests. @default 75 */
  readonly cpuUtilization?: number;
}

/** Options of a serving runtime inside a mesh (`ModelMesh.addRuntime`). */
export interface ServingRuntimeOptions {
  /** Number of pods. Ignored with `autoscaling`. @default 2 */
  readonly replicas?: number;
  /** A HorizontalPodAutoscaler instead of a fixed replica count. @default - none */
  readonly autoscaling?: RuntimeAutoscaling;
  /** Node labels the pods must match. @default - none */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** Tolerations of the pods. @default - none */
  readonly tolerations?: readonly k8s.Toleration[];
  /** Also synthesize the KServe `ServingRuntime` object, for KServe tooling and readers. @default true */
  readonly kserveObject?: boolean;
}

/** Props of {@link ServingRuntime}. */
export interface ServingRuntimeProps extends ServingRuntimeOptions {
  /** The mesh the runtime joins. */
  readonly mesh: MeshContext;
  /** What runs in the pods. */
  readonly runtime: RuntimeDefinition;
}

/** Upstream's reserved names and ports in runtime containers, plus the mesh's own ports. */
const RESERVED_CONTAINER_NAMES = new Set<string>([ContainerNames.MESH, ContainerNames.PULLER, 'rest-proxy']);
const RESERVED_PORT_NAMES = new Set(['grpc', 'http', 'prometheus']);
const RESERVED_PORTS = new Set([8080, 8085, 8089, 8090, 8033, 8008, 2112]);

/** Port of the puller, which the mesh calls instead of the runtime when the storage helper is on. */
const PULLER_PORT = 8086;
const ADAPTER_RESOURCES = { requests: { cpu: '50m', memory: '96Mi' }, limits: { cpu: '2', memory: '512Mi' } };

/** A parsed `port:<n>` / `unix:<path>` endpoint. */
export type Endpoint = { readonly port: number; readonly socket?: undefined } | { readonly socket: string; readonly port?: undefined };

function parseEndpoint(scope: Construct, field: string, value: string): Endpoint {
  const port = /^port:([0-9]+)$/.exec(value);
  if (port && Number(port[1]) > 0 && Number(port[1]) < 65536) return { port: Number(port[1]) };
  const socket = /^unix:(\/.+)$/.exec(value);
  if (socket) return { socket: socket[1] };
  return invalid(scope, field, `must be "port:<number>" or "unix:<absolute path>"; got "${value}"`);
}

function quantityMap(values: Record<string, string>): Record<string, k8s.Quantity> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, k8s.Quantity.fromString(value)]));
}

function memoryLimit(container: k8s.Container): string | undefined {
  const limit = container.resources?.limits?.memory;
  return limit === undefined ? undefined : String(limit.value);
}

/**
 * A serving runtime: the KServe `ServingRuntime` object and the `modelmesh-serving-<name>` Deployment that runs it —
 * model-server container(s), the built-in adapter or the puller, and the mesh container last — with a
 * PodDisruptionBudget and, optionally, a HorizontalPodAutoscaler.
 */
export class ServingRuntime extends Construct {
  /** Runtime name. */
  public readonly name: string;
  /** The Deployment's name, `<service>-<runtime>`. */
  public readonly deploymentName: string;
  /** The runtime definition. */
  public readonly runtime: RuntimeDefinition;
  /** `MM_LABELS` of the pods, sorted. */
  public readonly labels: readonly string[];
  /** The Deployment. */
  public readonly deployment: ApiObject;
  /** The KServe ServingRuntime object, unless turned off. */
  public readonly servingRuntime?: kserve.ServingRuntime;
  private readonly mesh: MeshContext;
  private readonly spi: Endpoint;
  private readonly data?: Endpoint;
  private readonly selector: Record<string, string>;

  public constructor(scope: Construct, id: string, props: ServingRuntimeProps) {
    super(scope, id);
    const runtime = props.runtime;
    this.mesh = props.mesh;
    this.runtime = runtime;
    this.name = runtime.name;
    checkName(this, 'runtime.name', this.name);
    this.deploymentName = `${this.mesh.serviceName}-${this.name}`;
    checkName(this, 'runtime.name', this.deploymentName);
    this.validate(runtime);
    this.spi = parseEndpoint(this, 'runtime.grpcEndpoint', runtime.grpcEndpoint);
    this.data = runtime.grpcDataEndpoint === undefined ? undefined : parseEndpoint(this, 'runtime.grpcDataEndpoint', runtime.grpcDataEndpoint);
    if (runtime.builtInAdapter && this.spi.port === undefined) {
      invalid(this, 'runtime.grpcEndpoint', `must be "port:<number>" with a built-in adapter; got "${runtime.grpcEndpoint}"`);
    }
    this.labels = runtimeLabels(runtime, this.mesh.rest);

    const replicas = props.replicas ?? 2;
    if (!Number.isInteger(replicas) || replicas < 0) invalid(this, 'replicas', `must be a whole number of pods (0 or more); got ${replicas}`);
    const autoscaling = props.autoscaling;
    const minReplicas = autoscaling?.minReplicas ?? 2;
    if (autoscaling && (!Number.isInteger(minReplicas) || minReplicas < 1 || autoscaling.maxReplicas < minReplicas)) {
      invalid(this, 'autoscaling', `needs 1 <= minReplicas <= maxReplicas; got ${minReplicas}..${autoscaling.maxReplicas}`);
    }

    this.selector = { [PodLabels.SERVICE]: this.mesh.serviceName, [PodLabels.NAME]: this.deploymentName };
    const labels = { ...this.mesh.commonLabels, 'app.kubernetes.io/component': 'serving-runtime', ...this.selector };

    if (props.kserveObject ?? true) {
      this.servingRuntime = new kserve.ServingRuntime(this, 'ServingRuntime', {
        metadata: {
          name: this.name,
          labels: this.mesh.commonLabels,
          annotations: Object.keys(runtime.annotations).length > 0 ? { ...runtime.annotations } : undefined,
        },
        spec: servingRuntimeSpec(runtime, autoscaling ? undefined : replicas),
      });
    }

    this.deployment = new k8s.KubeDeployment(this, 'Resource', {
      metadata: { name: this.deploymentName, labels },
      spec: Lazy.any({
        produce: (): k8s.DeploymentSpec => ({
          replicas: autoscaling ? undefined : replicas,
          selector: { matchLabels: this.selector },
          strategy: {
            type: 'RollingUpdate',
            rollingUpdate: { maxSurge: k8s.IntOrString.fromString('75%'), maxUnavailable: k8s.IntOrString.fromString('15%') },
          },
          template: { metadata: { labels, annotations: this.podAnnotations() }, spec: this.podSpec(props) },
        }),
      }),
    });

    new k8s.KubePodDisruptionBudget(this, 'Budget', {
      metadata: { name: this.deploymentName, labels },
      spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: this.selector } },
    });

    if (autoscaling) {
      new k8s.KubeHorizontalPodAutoscalerV2(this, 'Autoscaler', {
        metadata: { name: this.deploymentName, labels },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: this.deploymentName },
          minReplicas,
          maxReplicas: autoscaling.maxReplicas,
          metrics: [{
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: autoscaling.cpuUtilization ?? 75 } },
          }],
        },
      });
    }
  }

  private validate(runtime: RuntimeDefinition): void {
    if (runtime.supportedModelFormats.length === 0) {
      invalid(this, 'runtime.supportedModelFormats', 'must list at least one model format: a runtime without formats can never receive a model');
    }
    if (runtime.containers.length === 0) invalid(this, 'runtime.containers', 'must list at least one model-server container');
    const names = new Set<string>();
    runtime.containers.forEach((container, i) => {
      const field = `runtime.containers[${i}]`;
      if (RESERVED_CONTAINER_NAMES.has(container.name) || container.name.endsWith('-adapter')) {
        invalid(this, `${field}.name`, `"${container.name}" is reserved for the containers the mesh adds`);
      }
      if (names.has(container.name)) invalid(this, `${field}.name`, `"${container.name}" is used twice; container names must be unique`);
      names.add(container.name);
      if (container.lifecycle || container.readinessProbe) {
        invalid(this, field, 'must not set lifecycle or readinessProbe: the mesh sets the preStop hook and owns readiness');
      }
      for (const port of container.ports ?? []) {
        if (RESERVED_PORTS.has(port.containerPort) || (port.containerPort >= 11881 && port.containerPort <= 11899)) {
          invalid(this, `${field}.ports`, `uses ${port.containerPort}, which the mesh or its adapters reserve`);
        }
        if (port.name && RESERVED_PORT_NAMES.has(port.name)) invalid(this, `${field}.ports`, `uses the reserved port name "${port.name}"`);
      }
      const memory = memoryLimit(container);
      if (memory === undefined || parseBytes(memory) === undefined) {
        invalid(this, `${field}.resources.limits.memory`, 'must be set to a quantity such as "1Gi": the pod\'s model cache volume is sized from it');
      }
    });
    const adapter = runtime.builtInAdapter;
    if (adapter && !names.has(adapter.serverType)) {
      invalid(this, 'runtime.builtInAdapter.serverType', `"${adapter.serverType}" needs a runtime container of the same name`);
    }
  }

  private podAnnotations(): Record<string, string> | undefined {
    if (!this.mesh.metrics) return undefined;
    return { 'prometheus.io/path': '/metrics', 'prometheus.io/port': '2112', 'prometheus.io/scheme': 'http', 'prometheus.io/scrape': 'true' };
  }

  private podSpec(props: ServingRuntimeProps): k8s.PodSpec {
    const runtime = this.runtime;
    const claims = this.mesh.storage.claimNames;
    const sockets = [this.spi.socket, this.data?.socket].filter((s): s is string => s !== undefined);
    const socketDir = sockets.length > 0 ? sockets[0].slice(0, sockets[0].lastIndexOf('/')) || '/' : undefined;
    const pulls = runtime.storageHelper || runtime.builtInAdapter !== undefined;

    const modelMounts: k8s.VolumeMount[] = [
      { name: 'models-dir', mountPath: Mounts.MODELS_DIR },
      ...claims.map((claim) => ({ name: claim, mountPath: `${Mounts.PVC_MOUNTS_DIR}/${claim}`, readOnly: true })),
      ...(socketDir ? [{ name: 'domain-socket', mountPath: socketDir }] : []),
      { name: 'tmp', mountPath: '/tmp' },
    ];
    const storageMount = { name: 'storage-config', mountPath: Mounts.STORAGE_CONFIG_DIR, readOnly: true };
    const preStop = { preStop: { httpGet: { path: ProbePaths.PRESTOP, port: k8s.IntOrString.fromNumber(Ports.PRESTOP) } } };

    const runtimeContainers: k8s.Container[] = runtime.containers.map((container) => ({
      ...container,
      lifecycle: preStop,
      securityContext: {
        ...restrictedContainerSecurityContext({ readOnlyRootFilesystem: runtime.readOnlyRootFilesystem, runAsUser: runtime.runAsUser }),
        ...container.securityContext,
      },
      volumeMounts: [...modelMounts, ...(container.volumeMounts ?? [])],
    }));

    const sidecarPuller = runtime.storageHelper && runtime.puller === PullerPlacement.SIDECAR;
    const helper: k8s.Container[] = [];
    if (runtime.builtInAdapter) helper.push(this.adapterContainer(modelMounts, storageMount, preStop));
    else if (sidecarPuller) helper.push(this.pullerContainer(modelMounts, storageMount));

    const mm = meshContainer({
      mesh: this.mesh,
      labels: this.labels,
      spi: sidecarPuller ? { port: PULLER_PORT } : this.spi,
      data: this.data,
      socketDir,
      pullerMounts: runtime.storageHelper && !sidecarPuller ? [...modelMounts.filter((m) => m.name !== 'tmp' && m.name !== 'domain-socket'), storageMount] : undefined,
    });

    const containers = runtime.builtInAdapter ? [...helper, ...runtimeContainers, mm] : [...runtimeContainers, ...helper, mm];
    const limitBytes = runtime.containers.reduce((sum, container) => sum + (parseBytes(memoryLimit(container)!) ?? 0), 0);

    const volumes: k8s.Volume[] = [
      { name: 'models-dir', emptyDir: { sizeLimit: k8s.Quantity.fromString(formatBytes(limitBytes * 1.5)) } },
      { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('64Mi') } },
      ...(socketDir ? [{ name: 'domain-socket', emptyDir: {} }] : []),
      ...(pulls ? [this.mesh.storage.volume('storage-config')] : []),
      ...claims.map((claim) => ({ name: claim, persistentVolumeClaim: { claimName: claim, readOnly: true } })),
      { name: 'tc-config', configMap: { name: ObjectNames.TYPE_CONSTRAINTS_CONFIGMAP } },
      { name: 'catalog', configMap: { name: ObjectNames.CATALOG_CONFIGMAP } },
      { name: 'etcd-config', secret: { secretName: this.mesh.etcd.secretName, defaultMode: 0o440 } },
      ...(this.mesh.etcd.clientTlsSecretName
        ? [{ name: 'etcd-tls', secret: { secretName: this.mesh.etcd.clientTlsSecretName, defaultMode: 0o440 } }] : []),
      ...(this.mesh.tls ? [{ name: 'tls-certs', secret: { secretName: this.mesh.tls.secretName, defaultMode: 0o440 } }] : []),
    ];

    return {
      serviceAccountName: this.mesh.serviceAccountName,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: restrictedPodSecurityContext(),
      terminationGracePeriodSeconds: this.mesh.shutdownTimeout.toSeconds() + 10,
      nodeSelector: props.nodeSelector ? { ...props.nodeSelector } : undefined,
      tolerations: props.tolerations ? [...props.tolerations] : undefined,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64', 'arm64'] }] }],
          },
        },
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [{
            weight: 100,
            podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: this.selector } },
          }],
        },
      },
      containers,
      volumes,
    };
  }

  private adapterContainer(modelMounts: k8s.VolumeMount[], storageMount: k8s.VolumeMount, lifecycle: k8s.Lifecycle): k8s.Container {
    const adapter = this.runtime.builtInAdapter!;
    const server = this.runtime.containers.find((container) => container.name === adapter.serverType)!;
    const image = server.image ?? '';
    const env: k8s.EnvVar[] = [
      { name: 'ADAPTER_PORT', value: String(this.spi.port) },
      { name: 'RUNTIME_PORT', value: String(adapter.runtimeManagementPort) },
      { name: 'RUNTIME_DATA_ENDPOINT', value: this.runtime.grpcDataEndpoint ?? `port:${adapter.runtimeManagementPort}` },
      { name: 'CONTAINER_MEM_REQ_BYTES', valueFrom: { resourceFieldRef: { containerName: adapter.serverType, resource: 'requests.memory' } } },
      { name: 'MEM_BUFFER_BYTES', value: String(adapter.memBufferBytes) },
      { name: 'LOADTIME_TIMEOUT', value: String(adapter.modelLoadingTimeoutMillis) },
      { name: 'USE_EMBEDDED_PULLER', value: 'true' },
      { name: 'RUNTIME_VERSION', value: image.includes(':') ? image.slice(image.indexOf(':') + 1) : '' },
    ];
    const concurrency = this.runtime.annotations.maxLoadingConcurrency;
    if (concurrency !== undefined) env.push({ name: 'LOADING_CONCURRENCY', value: concurrency });
    const perModel = this.runtime.annotations.perModelConcurrencyLimit;
    if (perModel !== undefined) env.push({ name: 'LIMIT_PER_MODEL_CONCURRENCY', value: perModel });
    for (const extra of adapter.env ?? []) {
      const at = env.findIndex((e) => e.name === extra.name);
      if (at >= 0) env[at] = extra;
      else env.push(extra);
    }
    return {
      name: `${adapter.serverType}-adapter`,
      image: this.helperImage(),
      command: [`/opt/app/${adapter.serverType}-adapter`],
      env,
      resources: { requests: quantityMap(ADAPTER_RESOURCES.requests), limits: quantityMap(ADAPTER_RESOURCES.limits) },
      lifecycle,
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [...modelMounts, storageMount],
    };
  }

  private pullerContainer(modelMounts: k8s.VolumeMount[], storageMount: k8s.VolumeMount): k8s.Container {
    return {
      name: ContainerNames.PULLER,
      image: this.helperImage(),
      command: ['/opt/app/puller'],
      env: [
        { name: 'PORT', value: String(PULLER_PORT) },
        { name: 'MODEL_SERVER_ENDPOINT', value: this.runtime.grpcEndpoint },
        { name: 'ROOT_MODEL_DIR', value: Mounts.MODELS_DIR },
        { name: 'STORAGE_CONFIG_DIR', value: Mounts.STORAGE_CONFIG_DIR },
        { name: 'PVC_MOUNTS_DIR', value: Mounts.PVC_MOUNTS_DIR },
      ],
      resources: { requests: quantityMap(ADAPTER_RESOURCES.requests), limits: quantityMap(ADAPTER_RESOURCES.limits) },
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [...modelMounts, storageMount],
    };
  }

  private helperImage(): string {
    return this.mesh.helperImage;
  }
}
