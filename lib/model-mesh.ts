import { ApiObject, Duration, Lazy } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Certificate, checkCertManager, namespaceForCertificates, serviceDnsNames } from './cert-manager';
import { Catalog, CATALOG_FORMAT_VERSION, Mounts, ObjectNames, PodLabels, Ports } from './contract';
import { checkName, invalid } from './errors';
import { EtcdCluster } from './etcd-cluster';
import { EtcdBinding, EtcdConnection } from './etcd-connection';
import { Images } from './images';
import { MeshTls } from './mesh-container';
import { Model, ModelDeclaration, ModelHost, ModelOptions } from './model';
import { DATAPLANE_API_CONFIG, RuntimeLabelSource, typeConstraints } from './model-types';
import { dashboardConfigMap, ServiceMonitor } from './monitoring';
import { RuntimeDefinition } from './runtimes';
import { MeshContext, ServingRuntime, ServingRuntimeOptions } from './serving-runtime';
import { Storage } from './storage';
import { StorageConfig } from './storage-config';

/** Props of {@link ModelMesh}. */
export interface ModelMeshProps {
  /** The mesh's name: the Service, `MM_SERVICE_NAME`, and the prefix of every runtime Deployment. @default "modelmesh-serving" */
  readonly serviceName?: string;
  /** How the mesh reaches etcd. @default EtcdConnection.cluster() (a 3-member EtcdCluster in the namespace) */
  readonly etcd?: EtcdConnection;
  /** Runtimes to start with; more with `addRuntime`. @default - none */
  readonly runtimes?: readonly RuntimeDefinition[];
  /** Storage entries by key; more with `addStorage`. @default - none */
  readonly storage?: Readonly<Record<string, Storage>>;
  /** Image of the mesh container. @default Images.MODELMESH */
  readonly image?: string;
  /** Image of upstream's adapters and puller. @default Images.RUNTIME_ADAPTER */
  readonly helperImage?: string;
  /** A headless Service (clients balance across pods themselves, as upstream's default). @default true */
  readonly headless?: boolean;
  /** Serve KServe v2 REST on 8008 from the mesh. @default true */
  readonly rest?: boolean;
  /** Expose Prometheus metrics on 2112. @default true */
  readonly metrics?: boolean;
  /** Add a Prometheus operator ServiceMonitor (needs `metrics`). @default false */
  readonly serviceMonitor?: boolean;
  /** Add a Grafana dashboard ConfigMap (needs `metrics`). @default false */
  readonly grafanaDashboard?: boolean;
  /** TLS on the front door, from a Secret you provide or from cert-manager (`tls.issuer`). @default - plaintext */
  readonly tls?: MeshTls;
  /** Time a leaving pod has to move its models elsewhere; the pods' grace period is 10 s longer. @default Duration.seconds(90) */
  readonly shutdownTimeout?: Duration;
  /** Largest gRPC message accepted, in bytes. @default 16777216 */
  readonly grpcMaxMessageSize?: number;
  /** Resources of the mesh container. @default - requests 300m / 448Mi, limits 3 / 448Mi (upstream's) */
  readonly meshResources?: k8s.ResourceRequirements;
  /** Owner of vmodels created without one. @default "ksp" */
  readonly defaultVModelOwner?: string;
  /** Add NetworkPolicies that admit only the traffic the platform needs. @default true */
  readonly networkPolicy?: boolean;
  /** Who may call the mesh on 8033 / 8008. @default - every pod of the namespace */
  readonly clients?: readonly k8s.NetworkPolicyPeer[];
  /** Who may scrape metrics on 2112. @default - anyone */
  readonly metricsScrapers?: readonly k8s.NetworkPolicyPeer[];
}

const DEFAULT_MESH_RESOURCES: k8s.ResourceRequirements = {
  requests: { cpu: k8s.Quantity.fromString('300m'), memory: k8s.Quantity.fromString('448Mi') },
  limits: { cpu: k8s.Quantity.fromString('3'), memory: k8s.Quantity.fromString('448Mi') },
};

/**
 * A namespace's serving platform: the `modelmesh-serving` Service (gRPC 8033, REST 8008, metrics 2112), its
 * ServiceAccount, the type-constraints and dataplane ConfigMap (`tc-config`), the declared-model catalog, etcd, the
 * storage config, NetworkPolicies, optional monitoring objects, and one `ServingRuntime` per runtime.
 */
export class ModelMesh extends Construct implements MeshContext, ModelHost {
  /** @inheritdoc */
  public readonly serviceName: string;
  /** @inheritdoc */
  public readonly meshImage: string;
  /** @inheritdoc */
  public readonly helperImage: string;
  /** @inheritdoc */
  public readonly etcd: EtcdBinding;
  /** The etcd cluster, when the mesh created one. */
  public readonly etcdCluster?: EtcdCluster;
  /** @inheritdoc */
  public readonly storage: StorageConfig;
  /** @inheritdoc */
  public readonly metrics: boolean;
  /** @inheritdoc */
  public readonly rest: boolean;
  /** TLS on the front door, with the Secret's name resolved (`<serviceName>-tls` when cert-manager writes it). */
  public readonly tls?: MeshTls;
  /** The front door's certificate, when cert-manager issues it (`tls.issuer`). */
  public readonly tlsCertificate?: Certificate;
  /** @inheritdoc */
  public readonly shutdownTimeout: Duration;
  /** @inheritdoc */
  public readonly grpcMaxMessageSize: number;
  /** @inheritdoc */
  public readonly serviceAccountName: string;
  /** @inheritdoc */
  public readonly meshResources: k8s.ResourceRequirements;
  /** @inheritdoc */
  public readonly defaultVModelOwner: string;
  /** @inheritdoc */
  public readonly commonLabels: Readonly<Record<string, string>>;
  /** The `modelmesh-serving` Service. */
  public readonly service: ApiObject;
  /** In-cluster gRPC address of the mesh, `<service>:8033`. */
  public readonly grpcAddress: string;
  private readonly runtimeMap = new Map<string, ServingRuntime>();
  private readonly modelMap = new Map<string, Model>();

  public constructor(scope: Construct, id: string, props: ModelMeshProps = {}) {
    super(scope, id);
    this.serviceName = props.serviceName ?? ObjectNames.SERVICE;
    checkName(this, 'serviceName', this.serviceName, 40);
    this.meshImage = props.image ?? Images.MODELMESH;
    this.helperImage = props.helperImage ?? Images.RUNTIME_ADAPTER;
    this.metrics = props.metrics ?? true;
    this.rest = props.rest ?? true;
    this.tls = props.tls && this.frontDoorTls(props.tls);
    this.shutdownTimeout = props.shutdownTimeout ?? Duration.seconds(90);
    if (this.shutdownTimeout.toSeconds() < 1) invalid(this, 'shutdownTimeout', 'must be at least one second');
    this.grpcMaxMessageSize = props.grpcMaxMessageSize ?? 16777216;
    if (!Number.isInteger(this.grpcMaxMessageSize) || this.grpcMaxMessageSize < 1) {
      invalid(this, 'grpcMaxMessageSize', `must be a positive number of bytes; got ${this.grpcMaxMessageSize}`);
    }
    if (!this.metrics && (props.serviceMonitor || props.grafanaDashboard)) {
      invalid(this, 'metrics', 'is off, but serviceMonitor or grafanaDashboard needs it: turn metrics on or drop them');
    }
    this.serviceAccountName = this.serviceName;
    this.meshResources = props.meshResources ?? DEFAULT_MESH_RESOURCES;
    this.defaultVModelOwner = props.defaultVModelOwner ?? 'ksp';
    this.commonLabels = {
      'app.kubernetes.io/part-of': 'modelmesh',
      'app.kubernetes.io/instance': this.serviceName,
      'app.kubernetes.io/managed-by': 'cdk8s-modelmesh',
    };
    this.grpcAddress = `${this.serviceName}:${Ports.GRPC}`;
    const podSelector = { [PodLabels.SERVICE]: this.serviceName };

    const etcd = props.etcd ?? EtcdConnection.cluster();
    if (etcd.clusterProps) {
      const clusterTls = etcd.clusterProps.tls;
      const tls = clusterTls?.issuer ? { ...clusterTls, clientCommonName: clusterTls.clientCommonName ?? this.serviceName } : clusterTls;
      this.etcdCluster = new EtcdCluster(this, 'etcd', { clientSelector: podSelector, ...etcd.clusterProps, tls });
      this.etcd = this.etcdCluster.binding;
    } else {
      this.etcd = etcd.bindExternal(this);
    }

    this.storage = new StorageConfig(this, 'storage', { entries: props.storage });

    new k8s.KubeServiceAccount(this, 'ServiceAccount', {
      metadata: { name: this.serviceAccountName, labels: this.commonLabels },
      automountServiceAccountToken: false,
    });

    this.service = new k8s.KubeService(this, 'Service', {
      metadata: { name: this.serviceName, labels: { ...this.commonLabels, [PodLabels.SERVICE]: this.serviceName } },
      spec: {
        clusterIp: props.headless ?? true ? 'None' : undefined,
        selector: podSelector,
        ports: [
          { name: 'grpc', port: Ports.GRPC, targetPort: k8s.IntOrString.fromString('grpc'), protocol: 'TCP' },
          ...(this.rest ? [{ name: 'http', port: Ports.REST, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' }] : []),
          ...(this.metrics ? [{ name: 'prometheus', port: Ports.METRICS, targetPort: k8s.IntOrString.fromString('prometheus'), protocol: 'TCP' }] : []),
        ],
      },
    });

    if (props.tls?.issuer && this.tls?.secretName) {
      const namespace = namespaceForCertificates(this, 'tls.issuer');
      this.tlsCertificate = new Certificate(this, 'Certificate', {
        ...props.tls.certificate,
        secretName: this.tls.secretName,
        issuer: props.tls.issuer,
        // With clientAuth, instances forwarding to each other's front door present this certificate (the trust path lists tls.crt).
        purposes: this.tls.clientAuth ? ['server auth', 'client auth'] : ['server auth'],
        // Loopback too: the mesh's REST server calls its own front door on 127.0.0.1.
        dnsNames: [...serviceDnsNames(this.serviceName, namespace), 'localhost'],
        ipAddresses: ['127.0.0.1'],
        labels: this.commonLabels,
      });
    }

    new k8s.KubeConfigMap(this, 'TypeConstraints', {
      metadata: { name: ObjectNames.TYPE_CONSTRAINTS_CONFIGMAP, labels: this.commonLabels },
      data: Lazy.any({
        produce: () => ({
          [Mounts.TYPE_CONSTRAINTS_KEY]: JSON.stringify(typeConstraints(this.runtimeSources, this.rest)),
          [Mounts.DATAPLANE_CONFIG_KEY]: JSON.stringify(DATAPLANE_API_CONFIG),
        }),
      }),
    });

    new k8s.KubeConfigMap(this, 'Catalog', {
      metadata: { name: ObjectNames.CATALOG_CONFIGMAP, labels: this.commonLabels },
      data: Lazy.any({ produce: () => ({ [Mounts.CATALOG_KEY]: `${JSON.stringify(this.catalog(), null, 2)}\n` }) }),
    });

    if (props.networkPolicy ?? true) this.addNetworkPolicy(podSelector, props);
    if (props.serviceMonitor) {
      new ServiceMonitor(this, 'ServiceMonitor', {
        name: this.serviceName,
        labels: this.commonLabels,
        serviceLabels: { [PodLabels.SERVICE]: this.serviceName },
      });
    }
    if (props.grafanaDashboard) dashboardConfigMap(this, 'Dashboard', this.serviceName, this.commonLabels);

    for (const runtime of props.runtimes ?? []) this.addRuntime(runtime);

    this.node.addValidation({
      validate: () => this.runtimeMap.size > 0 ? [] : [`${this.node.path}: runtimes is empty: add at least one with addRuntime()`],
    });
  }

  /** Adds a runtime: its ServingRuntime object and `<service>-<name>` Deployment. */
  public addRuntime(runtime: RuntimeDefinition, options: ServingRuntimeOptions = {}): ServingRuntime {
    if (this.runtimeMap.has(runtime.name)) {
      invalid(this, 'runtimes', `has two runtimes named "${runtime.name}"; runtime names must be unique in a mesh`);
    }
    const servingRuntime = new ServingRuntime(this, `runtime-${runtime.name}`, { ...options, mesh: this, runtime });
    this.runtimeMap.set(runtime.name, servingRuntime);
    return servingRuntime;
  }

  /** Adds a storage entry under `key` (`default` is used by models that name no key). */
  public addStorage(key: string, storage: Storage): void {
    this.storage.addEntry(key, storage);
  }

  /** Declares a model (a catalog entry unless `declaration` says otherwise). */
  public addModel(id: string, options: ModelOptions): Model {
    const name = options.name ?? id;
    if (this.modelMap.has(name)) invalid(this, 'models', `has two models named "${name}"; model names (vmodel ids) must be unique`);
    const model = new Model(this, `model-${id}`, { ...options, name, mesh: this });
    this.modelMap.set(name, model);
    return model;
  }

  /** The runtimes, by name. */
  public get runtimes(): ServingRuntime[] {
    return [...this.runtimeMap.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** @inheritdoc */
  public get runtimeSources(): RuntimeLabelSource[] {
    return this.runtimes.map((runtime) => runtime.runtime);
  }

  /** @inheritdoc */
  public hasStorageKey(key: string): boolean {
    return this.storage.hasEntry(key);
  }

  /** The declared-model catalog document. */
  public catalog(): Catalog {
    const models = [...this.modelMap.values()]
      .filter((model) => model.declaration === ModelDeclaration.CATALOG)
      .map((model) => model.toCatalogEntry())
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { version: CATALOG_FORMAT_VERSION, models };
  }

  private frontDoorTls(tls: MeshTls): MeshTls {
    if (tls.issuer) {
      const secretName = `${this.serviceName}-tls`;
      if (tls.secretName !== undefined) {
        invalid(this, 'tls', `gives both issuer and secretName: with issuer, cert-manager writes the Secret "${secretName}"; give one or the other`);
      }
      checkCertManager(this, 'tls', tls.issuer, tls.certificate);
      return { ...tls, secretName };
    }
    if (tls.certificate !== undefined) invalid(this, 'tls.certificate', 'only applies with tls.issuer (cert-manager issues the certificate); give an issuer or drop it');
    if (tls.secretName === undefined) invalid(this, 'tls', 'needs either issuer (cert-manager issues the certificate) or secretName (a Secret you provide)');
    checkName(this, 'tls.secretName', tls.secretName, 253);
    return tls;
  }

  private addNetworkPolicy(podSelector: Record<string, string>, props: ModelMeshProps): void {
    const tcp = (port: number) => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' });
    const clientPorts = [tcp(Ports.GRPC), ...(this.rest ? [tcp(Ports.REST)] : [])];
    new k8s.KubeNetworkPolicy(this, 'NetworkPolicy', {
      metadata: { name: this.serviceName, labels: this.commonLabels },
      spec: {
        podSelector: { matchLabels: podSelector },
        policyTypes: ['Ingress'],
        ingress: [
          { from: [{ podSelector: { matchLabels: podSelector } }], ports: [tcp(Ports.GRPC)] },
          { from: props.clients ? [...props.clients] : [{ podSelector: {} }], ports: clientPorts },
          ...(this.metrics ? [{ from: props.metricsScrapers ? [...props.metricsScrapers] : undefined, ports: [tcp(Ports.METRICS)] }] : []),
        ],
      },
    });
  }
}
