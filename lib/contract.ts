/**
 * The contract between the synthesized manifests and the mesh runtime: environment variable names, default
 * ports, mount paths and file names. The constructs write these and the runtime reads them, from this one
 * module, so the YAML and the process cannot drift apart.
 *
 * Names follow upstream ModelMesh / modelmesh-serving wherever the concept exists there. This module must stay
 * free of imports: the runtime image compiles it without cdk8s.
 */

/** Environment variables read by `modelmesh serve`. */
export const MeshEnv = {
  /** Name of the mesh; instances with the same name (and store prefix) form one mesh. Required. */
  SERVICE_NAME: 'MM_SERVICE_NAME',
  /** Front door port: management API and inference passthrough. */
  GRPC_PORT: 'MM_SVC_GRPC_PORT',
  /** Largest gRPC message accepted at the front door, in bytes. */
  GRPC_MAX_MSG_SIZE: 'MM_SVC_GRPC_MAX_MSG_SIZE',
  /** Front-door connections with no call open and no traffic for this long are closed (ms). */
  IDLE_CONNECTION_TIMEOUT_MS: 'MM_IDLE_CONNECTION_TIMEOUT_MS',
  /** KServe v2 REST port; 0 turns REST off. */
  REST_PORT: 'MM_REST_PORT',
  /** `/ready` and `/live`. */
  PROBE_PORT: 'MM_PROBE_PORT',
  /** `/prestop`: blocks until the instance has left the mesh. */
  PRESTOP_PORT: 'MM_PRESTOP_WAIT_PORT',
  /** `prometheus:port=2112;scheme=http`, or `disabled`. */
  METRICS: 'MM_METRICS',
  /** `etcd:<path to etcd_connection JSON>`, `etcd:<host:port>`, or `embedded`. */
  KV_STORE: 'KV_STORE',
  /** Key prefix under the connection's root_prefix. */
  KV_STORE_PREFIX: 'MM_KVSTORE_PREFIX',
  /** TTL in seconds of the instance's store lease; bounds how long a vanished instance's records linger. */
  LEASE_TTL_SECONDS: 'MM_KV_LEASE_TTL_SECONDS',
  /** The runtime's SPI endpoint (mmesh.ModelRuntime): a localhost port or a Unix socket path. */
  RUNTIME_SPI_PORT: 'INTERNAL_GRPC_PORT',
  RUNTIME_SPI_SOCKET: 'INTERNAL_GRPC_SOCKET_PATH',
  /** The runtime's inference endpoint; defaults to the SPI endpoint. */
  RUNTIME_DATA_PORT: 'INTERNAL_SERVING_GRPC_PORT',
  RUNTIME_DATA_SOCKET: 'INTERNAL_SERVING_GRPC_SOCKET_PATH',
  /** Comma-separated labels this instance offers to model type constraints (`mt:onnx`, `rt:triton-2.x`, …). */
  LABELS: 'MM_LABELS',
  TYPE_CONSTRAINTS_PATH: 'MM_TYPE_CONSTRAINTS_PATH',
  DATAPLANE_CONFIG_PATH: 'MM_DATAPLANE_CONFIG_PATH',
  /** Owner given to vmodels created without one. */
  DEFAULT_VMODEL_OWNER: 'MM_DEFAULT_VMODEL_OWNER',
  /** Path of the declared-model catalog JSON the leader reconciles into vmodels. */
  CATALOG_PATH: 'MM_CATALOG_PATH',
  /** How long a leaving instance may take to move its models elsewhere. */
  SHUTDOWN_TIMEOUT_MS: 'SHUTDOWN_TIMEOUT_MS',
  SCALEUP_RPM_THRESHOLD: 'MM_SCALEUP_RPM_THRESHOLD',
  /** Deadline of data-plane calls that carry no grpc-timeout, in milliseconds. */
  DEFAULT_REQUEST_TIMEOUT_MS: 'MM_DEFAULT_REQUEST_TIMEOUT_MS',
  /** Calls that may wait for a copy at its concurrency limit (runtimes with limitModelConcurrency). */
  MAX_QUEUED_PER_COPY: 'MM_MAX_QUEUED_PER_COPY',
  LOAD_FAILURE_EXPIRY_TIME_MS: 'MM_LOAD_FAILURE_EXPIRY_TIME_MS',
  /** How long after start the fail-fast check judges this instance's loads (upstream's name). */
  BOOTSTRAP_CLEARANCE_PERIOD_MS: 'BOOTSTRAP_CLEARANCE_PERIOD_MS',
  /** `false` turns the start-up fail-fast check off (upstream's name). */
  FAILFAST_UPGRADE_ENABLED: 'MM_FAILFAST_UPGRADE_ENABLED',
  /** Explicit instance id; defaults to the last 12 characters of the pod name. */
  INSTANCE_ID: 'MM_INSTANCE_ID',
  POD_NAME: 'WKUBE_POD_NAME',
  /** Address other instances use to reach this one. */
  POD_IP: 'WKUBE_POD_IPADDR',
  /** Node (host) address, for locality. */
  LOCATION: 'MM_LOCATION',
  ZONE: 'MM_ZONE',
  /**
   * The mounted `storage-config` secret. Set, it turns on the mesh's built-in puller: each model is fetched from
   * storage into `ROOT_MODEL_DIR/<modelId>/` before loadModel, so the runtime receives a local path.
   */
  STORAGE_CONFIG_DIR: 'STORAGE_CONFIG_DIR',
  /** Where the built-in puller writes models (shared with the model server). */
  ROOT_MODEL_DIR: 'ROOT_MODEL_DIR',
  /** Where PVCs named by `pvc` storage entries are mounted, one folder per claim. */
  PVC_MOUNTS_DIR: 'MM_PVC_MOUNTS_DIR',
  TLS_KEY_CERT_PATH: 'MM_TLS_KEY_CERT_PATH',
  TLS_PRIVATE_KEY_PATH: 'MM_TLS_PRIVATE_KEY_PATH',
  /** `require` or `optional`. */
  TLS_CLIENT_AUTH: 'MM_TLS_CLIENT_AUTH',
  TLS_TRUST_CERT_PATH: 'MM_TLS_TRUST_CERT_PATH',
  LOG_LEVEL: 'MM_LOG_LEVEL',
  /**
   * How far (percent) V8 lets the old generation grow past what the last full collection kept before collecting
   * again; 0 leaves V8's own policy (which may let it reach several times the live data).
   */
  HEAP_GROWTH_PERCENT: 'MM_HEAP_GROWTH_PERCENT',
  /**
   * How long (ms) a just-in-time load on the instance a call reached may run before that instance records its claim
   * in the registry. A load done sooner writes only its outcome (one store write instead of two); until the claim is
   * written, other instances do not know of the load. 0 claims at once.
   */
  LOAD_CLAIM_DELAY_MS: 'MM_LOAD_CLAIM_DELAY_MS',
  /** `true`: one log line per data-plane call, with its request id (upstream's name). */
  LOG_EACH_INVOKE: 'MM_LOG_EACH_INVOKE',
} as const;

/** Environment variables read by the built-in model servers (`modelmesh runtime onnx|example`). */
export const RuntimeEnv = {
  PORT: 'MM_RUNTIME_PORT',
  /** Memory request of the model-server container, as upstream's adapters read it. */
  CONTAINER_MEM_REQ_BYTES: 'CONTAINER_MEM_REQ_BYTES',
  MEM_BUFFER_BYTES: 'MEM_BUFFER_BYTES',
  /** Model size = size on disk × this (upstream's adapters: 1.25). */
  MODELSIZE_MULTIPLIER: 'MODELSIZE_MULTIPLIER',
  /** `modelLoadingTimeoutMs` reported to the mesh, in milliseconds. */
  LOADTIME_TIMEOUT: 'LOADTIME_TIMEOUT',
  /** `defaultModelSizeInBytes` reported to the mesh. */
  DEFAULT_MODELSIZE: 'DEFAULT_MODELSIZE',
  /** `maxLoadingConcurrency` reported to the mesh. */
  LOADING_CONCURRENCY: 'LOADING_CONCURRENCY',
  ROOT_MODEL_DIR: 'ROOT_MODEL_DIR',
  STORAGE_CONFIG_DIR: 'STORAGE_CONFIG_DIR',
} as const;

/** Default ports. */
export const Ports = {
  GRPC: 8033,
  REST: 8008,
  METRICS: 2112,
  PROBE: 8089,
  PRESTOP: 8090,
  /** The runtime (or adapter) SPI port inside the pod. */
  RUNTIME_SPI: 8085,
} as const;

/** HTTP paths served on the probe and prestop ports. */
export const ProbePaths = {
  READY: '/ready',
  LIVE: '/live',
  PRESTOP: '/prestop',
} as const;

/** Where the synthesized pods mount things, and the file names inside. */
export const Mounts = {
  ETCD_DIR: '/opt/kserve/mmesh/etcd',
  ETCD_CONNECTION_KEY: 'etcd_connection',
  CONFIG_DIR: '/etc/watson/mmesh/config',
  TYPE_CONSTRAINTS_KEY: 'type_constraints',
  DATAPLANE_CONFIG_KEY: 'dataplane_api_config',
  TLS_DIR: '/opt/kserve/mmesh/tls',
  MODELS_DIR: '/models',
  STORAGE_CONFIG_DIR: '/storage-config',
  PVC_MOUNTS_DIR: '/pvc_mounts',
  /** The declared-model catalog ConfigMap's mount in the mesh container, and its one key (see {@link Catalog}). */
  CATALOG_DIR: '/etc/modelmesh/catalog',
  CATALOG_KEY: 'models.json',
  /** Client certificate and CA for an etcd that requires TLS (`tls.crt`, `tls.key`, `ca.crt`). */
  ETCD_TLS_DIR: '/opt/kserve/mmesh/etcd-tls',
} as const;

/** Kubernetes object names other components find by convention. */
export const ObjectNames = {
  SERVICE: 'modelmesh-serving',
  ETCD_SECRET: 'model-serving-etcd',
  STORAGE_SECRET: 'storage-config',
  TYPE_CONSTRAINTS_CONFIGMAP: 'tc-config',
  /** The declared-model catalog; the mesh mounts its `models.json` at `Mounts.CATALOG_DIR`. */
  CATALOG_CONFIGMAP: 'modelmesh-catalog',
} as const;

/** Container names inside a serving-runtime pod, as modelmesh-serving names them. */
export const ContainerNames = {
  /** The mesh process. */
  MESH: 'mm',
  /** The storage helper that pulls models for runtimes without a built-in adapter. */
  PULLER: 'puller',
} as const;

/** The `modelmesh` command line the pods run (design §9). */
export const Commands = {
  BIN: 'modelmesh',
  /** `modelmesh serve`: the mesh process. */
  SERVE: 'serve',
  /** `modelmesh runtime onnx|example`: a built-in model server. */
  RUNTIME: 'runtime',
} as const;

/** Pod labels the Service and the mesh select on (upstream names). */
export const PodLabels = {
  /** Value: the mesh's service name (`modelmesh-serving`). */
  SERVICE: 'modelmesh-service',
  /** Value: the Deployment's name (`modelmesh-serving-<runtime>`). */
  NAME: 'name',
} as const;

/** Version of the declared-model catalog format (`Catalog.version`). */
export const CATALOG_FORMAT_VERSION = 1;

/**
 * One declared model in the catalog (`models.json` in the `modelmesh-catalog` ConfigMap). The mesh leader keeps a
 * vmodel named `name` pointing at a concrete model built from the other fields.
 */
export interface CatalogModel {
  /** The vmodel id clients address (`mm-vmodel-id`, or `model_name` in KServe v2 requests). */
  readonly name: string;
  /** The model type string given to the mesh: `mt:<format>[:<version>]`, or `rt:<runtime>` when a runtime is named. */
  readonly modelType: string;
  /** The declared model format. */
  readonly modelFormat: { readonly name: string; readonly version?: string };
  /** Path of the model inside its storage. */
  readonly path: string;
  /** Key of the `storage-config` entry to pull from; absent means the puller's default entry. */
  readonly storageKey?: string;
  /** Overrides of the storage entry's fields (from a `storageUri`: `type`, `bucket`, …). */
  readonly storageParams?: Readonly<Record<string, string>>;
  /** The URI the model was declared with, when it was declared with one (already parsed into path/storageParams). */
  readonly storageUri?: string;
  /** Path of the model's schema file inside its storage. */
  readonly schemaPath?: string;
  /** Owner of the vmodel; defaults to the mesh's `MM_DEFAULT_VMODEL_OWNER`. */
  readonly owner?: string;
}

/** The catalog document: `{"version": 1, "models": [...]}`, models sorted by name. */
export interface Catalog {
  /** Format version, `CATALOG_FORMAT_VERSION`: the mesh applies no model of a catalog with another version. */
  readonly version: number;
  /** The declared models, sorted by name. */
  readonly models: readonly CatalogModel[];
}

/** Store layout defaults. */
export const StoreDefaults = {
  KV_STORE_PREFIX: 'mm',
} as const;

/** gRPC metadata keys that select a model on the data plane. */
export const RoutingHeaders = {
  MODEL_ID: 'mm-model-id',
  VMODEL_ID: 'mm-vmodel-id',
  /** A vmodel id falling back to a model id of that name: how the REST endpoint names the URL's model. */
  MODEL_NAME: 'mm-model-name',
  BALANCED: 'mm-balanced',
} as const;
