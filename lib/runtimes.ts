import { k8s } from 'cdk8s-plus-28';
import { Commands, Mounts, Ports, RuntimeEnv } from './contract';
import { Images } from './images';
import { ModelFormat } from './model-types';

/** upstream's built-in adapter settings (`builtInAdapter` of a ServingRuntime). */
export interface BuiltInAdapter {
  /** `triton`, `mlserver`, `ovms` or `torchserve`; the runtime must have a container of this name. */
  readonly serverType: string;
  /** Port of the model server's management API. */
  readonly runtimeManagementPort: number;
  /** Memory kept free for the server itself, in bytes. */
  readonly memBufferBytes: number;
  /** Time a model may take to load, in milliseconds. */
  readonly modelLoadingTimeoutMillis: number;
  /** Extra adapter env; entries replace variables of the same name. @default - none */
  readonly env?: readonly k8s.EnvVar[];
}

/** Where models are fetched from storage when a runtime's storage helper is on. */
export enum PullerPlacement {
  /** The mesh container pulls each model into `/models/<modelId>/` before loadModel: no extra container. */
  MESH = 'mesh',
  /** Upstream's `puller` sidecar (modelmesh-runtime-adapter image) sits between the mesh and the runtime. */
  SIDECAR = 'sidecar',
}

/** Everything that defines a serving runtime: its containers, formats and endpoints. */
export interface RuntimeDefinitionProps {
  /** Runtime name (the ServingRuntime object's name; the Deployment is `modelmesh-serving-<name>`). */
  readonly name: string;
  /** The model-server container(s). */
  readonly containers: readonly k8s.Container[];
  /** Formats the runtime serves; `autoSelect` ones receive models that name no runtime. */
  readonly supportedModelFormats: readonly ModelFormat[];
  /** Inference protocols, e.g. `grpc-v2`. @default [] */
  readonly protocolVersions?: readonly string[];
  /** The SPI endpoint (`mmesh.ModelRuntime`): `port:<n>` or `unix:<path>`. @default "port:8085" */
  readonly grpcEndpoint?: string;
  /** The inference endpoint: `port:<n>` or `unix:<path>`. @default - the SPI endpoint */
  readonly grpcDataEndpoint?: string;
  /** upstream's runtime adapter, which also pulls models. @default - none */
  readonly builtInAdapter?: BuiltInAdapter;
  /** Fetch models from `storage-config` before the runtime loads them (only without a built-in adapter). @default true */
  readonly storageHelper?: boolean;
  /** Which component fetches models when the storage helper is on. @default PullerPlacement.MESH */
  readonly puller?: PullerPlacement;
  /** Annotations of the ServingRuntime object (`maxLoadingConcurrency`, `perModelConcurrencyLimit`). @default - none */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Keep the model-server containers' root filesystem read-only (a writable `/tmp` is mounted). @default true */
  readonly readOnlyRootFilesystem?: boolean;
  /** User id the model-server containers run as. @default - the pod's user (2000) */
  readonly runAsUser?: number;
}

/** A serving runtime definition; build one with `Runtimes.*` or `Runtimes.custom()`. */
export class RuntimeDefinition {
  /** @internal */
  public static create(props: RuntimeDefinitionProps): RuntimeDefinition {
    return new RuntimeDefinition(props);
  }

  /** Runtime name. */
  public readonly name: string;
  /** Model-server containers, as declared. */
  public readonly containers: readonly k8s.Container[];
  /** Supported model formats. */
  public readonly supportedModelFormats: readonly ModelFormat[];
  /** Inference protocols. */
  public readonly protocolVersions: readonly string[];
  /** SPI endpoint. */
  public readonly grpcEndpoint: string;
  /** Inference endpoint, if different from the SPI endpoint. */
  public readonly grpcDataEndpoint?: string;
  /** Built-in adapter settings. */
  public readonly builtInAdapter?: BuiltInAdapter;
  /** Whether models are fetched from storage before the runtime loads them. */
  public readonly storageHelper: boolean;
  /** Which component fetches them. */
  public readonly puller: PullerPlacement;
  /** ServingRuntime annotations. */
  public readonly annotations: Readonly<Record<string, string>>;
  /** Whether model-server containers get a read-only root filesystem. */
  public readonly readOnlyRootFilesystem: boolean;
  /** User id of the model-server containers. */
  public readonly runAsUser?: number;

  private constructor(props: RuntimeDefinitionProps) {
    this.name = props.name;
    this.containers = props.containers.map((container) => ({ ...container }));
    this.supportedModelFormats = props.supportedModelFormats.map((format) => ({ ...format }));
    this.protocolVersions = [...(props.protocolVersions ?? [])];
    this.grpcEndpoint = props.grpcEndpoint ?? `port:${Ports.RUNTIME_SPI}`;
    this.grpcDataEndpoint = props.grpcDataEndpoint;
    this.builtInAdapter = props.builtInAdapter;
    this.storageHelper = props.builtInAdapter ? false : props.storageHelper ?? true;
    this.puller = props.puller ?? PullerPlacement.MESH;
    this.annotations = { ...(props.annotations ?? {}) };
    this.readOnlyRootFilesystem = props.readOnlyRootFilesystem ?? true;
    this.runAsUser = props.runAsUser;
  }
}

/** Options every preset takes. */
export interface RuntimePresetOptions {
  /** Runtime name. @default - the preset's upstream name (`triton-2.x`, …, `onnx`, `example`) */
  readonly name?: string;
  /** Model-server image. @default - the preset's image in `Images` */
  readonly image?: string;
  /** Model-server CPU request / limit and memory (request = limit). @default - the preset's upstream values */
  readonly resources?: { readonly cpuRequest?: string; readonly cpuLimit?: string; readonly memory?: string };
}

/** Options of the presets that run this project's image. */
export interface ProjectRuntimeOptions extends RuntimePresetOptions {
  /** Fetch models from `storage-config` entries before the runtime loads them. @default true */
  readonly storageHelper?: boolean;
  /** Which component fetches them. @default PullerPlacement.MESH */
  readonly puller?: PullerPlacement;
}

const MEM_BUFFER_BYTES = 134217728;
const LOADING_TIMEOUT_MS = 90000;

function resources(options: RuntimePresetOptions, cpuRequest: string, cpuLimit: string, memory: string): k8s.ResourceRequirements {
  const mem = options.resources?.memory ?? memory;
  return {
    requests: { cpu: k8s.Quantity.fromString(options.resources?.cpuRequest ?? cpuRequest), memory: k8s.Quantity.fromString(mem) },
    limits: { cpu: k8s.Quantity.fromString(options.resources?.cpuLimit ?? cpuLimit), memory: k8s.Quantity.fromString(mem) },
  };
}

function adapter(serverType: string, runtimeManagementPort: number): BuiltInAdapter {
  return { serverType, runtimeManagementPort, memBufferBytes: MEM_BUFFER_BYTES, modelLoadingTimeoutMillis: LOADING_TIMEOUT_MS };
}

/** The runtimes modelmesh-serving ships, with its images and adapters, and this project's own runtimes. */
export class Runtimes {
  /** NVIDIA Triton (`triton-2.x`): keras, onnx, pytorch, tensorflow, tensorrt; sklearn, xgboost, lightgbm when named. */
  public static triton(options: RuntimePresetOptions = {}): RuntimeDefinition {
    const script = 'mkdir -p /models/_triton_models; chmod 777 /models/_triton_models; exec tritonserver '
      + '"--model-repository=/models/_triton_models" "--model-control-mode=explicit" "--strict-model-config=false" '
      + '"--strict-readiness=false" "--allow-http=true" "--allow-sagemaker=false" ';
    return RuntimeDefinition.create({
      name: options.name ?? 'triton-2.x',
      annotations: { maxLoadingConcurrency: '2' },
      containers: [{
        name: 'triton',
        image: options.image ?? Images.TRITON,
        command: ['/bin/sh'],
        args: ['-c', script],
        livenessProbe: {
          exec: { command: ['curl', '--fail', '--silent', '--show-error', '--max-time', '9', 'http://localhost:8000/v2/health/live'] },
          initialDelaySeconds: 5,
          periodSeconds: 30,
          timeoutSeconds: 10,
        },
        resources: resources(options, '500m', '5', '1Gi'),
      }],
      supportedModelFormats: [
        { name: 'keras', version: '2', autoSelect: true },
        { name: 'onnx', version: '1', autoSelect: true },
        { name: 'pytorch', version: '1', autoSelect: true },
        { name: 'tensorflow', version: '1', autoSelect: true },
        { name: 'tensorflow', version: '2', autoSelect: true },
        { name: 'tensorrt', version: '7', autoSelect: true },
        { name: 'sklearn', version: '0', autoSelect: false },
        { name: 'xgboost', version: '1', autoSelect: false },
        { name: 'lightgbm', version: '3', autoSelect: false },
      ],
      protocolVersions: ['grpc-v2'],
      grpcEndpoint: 'port:8085',
      grpcDataEndpoint: 'port:8001',
      builtInAdapter: adapter('triton', 8001),
    });
  }

  /** Seldon MLServer (`mlserver-1.x`): sklearn, xgboost, lightgbm. */
  public static mlserver(options: RuntimePresetOptions = {}): RuntimeDefinition {
    return RuntimeDefinition.create({
      name: options.name ?? 'mlserver-1.x',
      containers: [{
        name: 'mlserver',
        image: options.image ?? Images.MLSERVER,
        env: [
          { name: 'MLSERVER_MODELS_DIR', value: '/models/_mlserver_models/' },
          { name: 'MLSERVER_GRPC_PORT', value: '8001' },
          { name: 'MLSERVER_HTTP_PORT', value: '8002' },
          { name: 'MLSERVER_LOAD_MODELS_AT_STARTUP', value: 'false' },
          { name: 'MLSERVER_MODEL_NAME', value: 'dummy-model-fixme' },
          { name: 'MLSERVER_HOST', value: '127.0.0.1' },
          { name: 'MLSERVER_GRPC_MAX_MESSAGE_LENGTH', value: '-1' },
        ],
        resources: resources(options, '500m', '5', '1Gi'),
      }],
      supportedModelFormats: [
        { name: 'sklearn', version: '0', autoSelect: true },
        { name: 'xgboost', version: '1', autoSelect: true },
        { name: 'lightgbm', version: '3', autoSelect: true },
      ],
      protocolVersions: ['grpc-v2'],
      grpcEndpoint: 'port:8085',
      grpcDataEndpoint: 'port:8001',
      builtInAdapter: adapter('mlserver', 8001),
    });
  }

  /** OpenVINO Model Server (`ovms-1.x`): openvino_ir; onnx when named. */
  public static ovms(options: RuntimePresetOptions = {}): RuntimeDefinition {
    return RuntimeDefinition.create({
      name: options.name ?? 'ovms-1.x',
      containers: [{
        name: 'ovms',
        image: options.image ?? Images.OVMS,
        args: [
          '--port=8001',
          '--rest_port=8888',
          '--config_path=/models/model_config_list.json',
          '--file_system_poll_wait_seconds=0',
          '--grpc_bind_address=127.0.0.1',
          '--rest_bind_address=127.0.0.1',
        ],
        resources: resources(options, '500m', '5', '1Gi'),
      }],
      supportedModelFormats: [
        { name: 'openvino_ir', version: 'opset1', autoSelect: true },
        { name: 'onnx', version: '1' },
      ],
      protocolVersions: ['grpc-v1'],
      grpcEndpoint: 'port:8085',
      grpcDataEndpoint: 'port:8001',
      builtInAdapter: adapter('ovms', 8888),
    });
  }

  /** TorchServe (`torchserve-0.x`): pytorch-mar. Its image writes logs under its home: the root filesystem stays writable. */
  public static torchserve(options: RuntimePresetOptions = {}): RuntimeDefinition {
    return RuntimeDefinition.create({
      name: options.name ?? 'torchserve-0.x',
      containers: [{
        name: 'torchserve',
        image: options.image ?? Images.TORCHSERVE,
        args: [
          'while [ ! -e "$TS_CONFIG_FILE" ]; do echo "waiting for config file..."; sleep 1; done;',
          'exec',
          'torchserve',
          '--start',
          '--foreground',
        ],
        env: [{ name: 'TS_CONFIG_FILE', value: '/models/_torchserve_models/mmconfig.properties' }],
        resources: resources(options, '500m', '5', '1Gi'),
      }],
      supportedModelFormats: [{ name: 'pytorch-mar', version: '0', autoSelect: true }],
      grpcEndpoint: 'port:8085',
      grpcDataEndpoint: 'port:7070',
      builtInAdapter: adapter('torchserve', 7071),
      readOnlyRootFilesystem: false,
    });
  }

  /** This project's ONNX server (`modelmesh runtime onnx`, onnxruntime-node): onnx models. */
  public static onnx(options: ProjectRuntimeOptions = {}): RuntimeDefinition {
    return projectRuntime('onnx', options, [{ name: 'onnx', version: '1', autoSelect: true }], ['500m', '2', '1Gi']);
  }

  /** This project's example server (`modelmesh runtime example`): tiny string models of format `example`, for tests and demos. */
  public static example(options: ProjectRuntimeOptions = {}): RuntimeDefinition {
    return projectRuntime('example', options, [{ name: 'example', autoSelect: true }], ['100m', '1', '256Mi']);
  }

  /** Any model server that implements the `mmesh.ModelRuntime` SPI, or one with an upstream adapter. */
  public static custom(props: RuntimeDefinitionProps): RuntimeDefinition {
    return RuntimeDefinition.create(props);
  }

  private constructor() {}
}

function projectRuntime(kind: 'onnx' | 'example', options: ProjectRuntimeOptions, formats: ModelFormat[],
  [cpuRequest, cpuLimit, memory]: [string, string, string]): RuntimeDefinition {
  return RuntimeDefinition.create({
    name: options.name ?? kind,
    containers: [{
      name: kind,
      image: options.image ?? Images.MODELMESH,
      command: [Commands.BIN, Commands.RUNTIME, kind],
      env: [
        { name: RuntimeEnv.PORT, value: String(Ports.RUNTIME_SPI) },
        { name: RuntimeEnv.ROOT_MODEL_DIR, value: Mounts.MODELS_DIR },
        {
          name: RuntimeEnv.CONTAINER_MEM_REQ_BYTES,
          valueFrom: { resourceFieldRef: { containerName: kind, resource: 'requests.memory' } },
        },
      ],
      resources: resources(options, cpuRequest, cpuLimit, memory),
    }],
    supportedModelFormats: formats,
    protocolVersions: ['grpc-v2'],
    grpcEndpoint: `port:${Ports.RUNTIME_SPI}`,
    grpcDataEndpoint: `port:${Ports.RUNTIME_SPI}`,
    storageHelper: options.storageHelper ?? true,
    puller: options.puller,
  });
}
