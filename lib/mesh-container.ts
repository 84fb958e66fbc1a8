import { k8s } from 'cdk8s-plus-28';
import type { CertManagerIssuer, CertificateOptions } from './cert-manager';
import { Commands, ContainerNames, MeshEnv, Mounts, Ports, ProbePaths, StoreDefaults } from './contract';
import { restrictedContainerSecurityContext } from './security';
import type { Endpoint, MeshContext } from './serving-runtime';

/**
 * TLS on the mesh's front door (gRPC 8033 and REST 8008): name a Secret you provide (`secretName`), or give an
 * `issuer` and the chart adds a cert-manager Certificate that writes `<serviceName>-tls`.
 */
export interface MeshTls {
  /**
   * Secret with `tls.crt` and `tls.key` (and `ca.crt` when clients must present certificates).
   * Mutually exclusive with `issuer`. @default - with `issuer`, `<serviceName>-tls`, written by cert-manager
   */
  readonly secretName?: string;
  /**
   * A cert-manager issuer that signs the front door's certificate, valid for the Service's names in the chart's
   * namespace (which must be set) and for loopback. Mutually exclusive with `secretName`. @default - you provide the Secret
   */
  readonly issuer?: CertManagerIssuer;
  /** Lifetime and key of the certificate cert-manager issues; only with `issuer`. @default - see CertificateOptions */
  readonly certificate?: CertificateOptions;
  /** Whether clients must (`require`) or may (`optional`) present a certificate signed by `ca.crt`. @default - not asked */
  readonly clientAuth?: 'optional' | 'require';
}

/** What the mesh container needs to know about its pod. */
export interface MeshContainerProps {
  /** The mesh the pod belongs to. */
  readonly mesh: MeshContext;
  /** `MM_LABELS`, sorted. */
  readonly labels: readonly string[];
  /** Where the mesh calls the SPI: the runtime, its adapter, or the puller. */
  readonly spi: Endpoint;
  /** The runtime's inference endpoint, when it differs from the SPI endpoint. */
  readonly data?: Endpoint;
  /** Directory of the runtime's Unix sockets, if any. */
  readonly socketDir?: string;
  /** With the built-in puller: the models folder, PVC and storage-config mounts it needs. @default - puller off */
  readonly pullerMounts?: readonly k8s.VolumeMount[];
}

function env(name: string, value: string | number): k8s.EnvVar {
  return { name, value: String(value) };
}

function fieldRef(name: string, fieldPath: string): k8s.EnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

function endpointEnv(portName: string, socketName: string, endpoint: Endpoint): k8s.EnvVar {
  return endpoint.socket !== undefined ? env(socketName, endpoint.socket) : env(portName, endpoint.port!);
}

/**
 * The `mm` container: `modelmesh serve` configured by environment with the names of `lib/contract.ts`, its probes on
 * 8089, its `/prestop` hook on 8090 and the mounts of the etcd connection, type constraints and catalog.
 */
export function meshContainer(props: MeshContainerProps): k8s.Container {
  const { mesh } = props;
  const ports: k8s.ContainerPort[] = [
    { name: 'grpc', containerPort: Ports.GRPC, protocol: 'TCP' },
    ...(mesh.rest ? [{ name: 'http', containerPort: Ports.REST, protocol: 'TCP' }] : []),
    ...(mesh.metrics ? [{ name: 'prometheus', containerPort: Ports.METRICS, protocol: 'TCP' }] : []),
  ];
  const variables: k8s.EnvVar[] = [
    env(MeshEnv.SERVICE_NAME, mesh.serviceName),
    env(MeshEnv.GRPC_PORT, Ports.GRPC),
    env(MeshEnv.REST_PORT, mesh.rest ? Ports.REST : 0),
    env(MeshEnv.PROBE_PORT, Ports.PROBE),
    env(MeshEnv.PRESTOP_PORT, Ports.PRESTOP),
    fieldRef(MeshEnv.POD_NAME, 'metadata.name'),
    fieldRef(MeshEnv.POD_IP, 'status.podIP'),
    fieldRef(MeshEnv.LOCATION, 'status.hostIP'),
    env(MeshEnv.KV_STORE, `etcd:${Mounts.ETCD_DIR}/${Mounts.ETCD_CONNECTION_KEY}`),
    env(MeshEnv.METRICS, mesh.metrics ? `prometheus:port=${Ports.METRICS};scheme=http` : 'disabled'),
    env(MeshEnv.SHUTDOWN_TIMEOUT_MS, mesh.shutdownTimeout.toMilliseconds()),
    ...(props.data ? [endpointEnv(MeshEnv.RUNTIME_DATA_PORT, MeshEnv.RUNTIME_DATA_SOCKET, props.data)] : []),
    endpointEnv(MeshEnv.RUNTIME_SPI_PORT, MeshEnv.RUNTIME_SPI_SOCKET, props.spi),
    env(MeshEnv.GRPC_MAX_MSG_SIZE, mesh.grpcMaxMessageSize),
    env(MeshEnv.KV_STORE_PREFIX, StoreDefaults.KV_STORE_PREFIX),
    env(MeshEnv.DEFAULT_VMODEL_OWNER, mesh.defaultVModelOwner),
    env(MeshEnv.LABELS, props.labels.join(',')),
    env(MeshEnv.TYPE_CONSTRAINTS_PATH, `${Mounts.CONFIG_DIR}/${Mounts.TYPE_CONSTRAINTS_KEY}`),
    env(MeshEnv.DATAPLANE_CONFIG_PATH, `${Mounts.CONFIG_DIR}/${Mounts.DATAPLANE_CONFIG_KEY}`),
    env(MeshEnv.CATALOG_PATH, `${Mounts.CATALOG_DIR}/${Mounts.CATALOG_KEY}`),
  ];
  if (props.pullerMounts) {
    variables.push(env(MeshEnv.STORAGE_CONFIG_DIR, Mounts.STORAGE_CONFIG_DIR));
    variables.push(env(MeshEnv.ROOT_MODEL_DIR, Mounts.MODELS_DIR));
    variables.push(env(MeshEnv.PVC_MOUNTS_DIR, Mounts.PVC_MOUNTS_DIR));
  }
  if (mesh.tls) {
    variables.push(env(MeshEnv.TLS_KEY_CERT_PATH, `${Mounts.TLS_DIR}/tls.crt`));
    variables.push(env(MeshEnv.TLS_PRIVATE_KEY_PATH, `${Mounts.TLS_DIR}/tls.key`));
    if (mesh.tls.clientAuth) {
      variables.push(env(MeshEnv.TLS_CLIENT_AUTH, mesh.tls.clientAuth));
      variables.push(env(MeshEnv.TLS_TRUST_CERT_PATH, `${Mounts.TLS_DIR}/tls.crt,${Mounts.TLS_DIR}/ca.crt`));
    }
  }
  return {
    name: ContainerNames.MESH,
    image: mesh.meshImage,
    command: [Commands.BIN, Commands.SERVE],
    ports,
    env: variables,
    readinessProbe: {
      httpGet: { path: ProbePaths.READY, port: k8s.IntOrString.fromNumber(Ports.PROBE) },
      initialDelaySeconds: 5,
      periodSeconds: 5,
      timeoutSeconds: 1,
    },
    livenessProbe: {
      httpGet: { path: ProbePaths.LIVE, port: k8s.IntOrString.fromNumber(Ports.PROBE) },
      initialDelaySeconds: 90,
      periodSeconds: 30,
      timeoutSeconds: 5,
      failureThreshold: 2,
    },
    lifecycle: { preStop: { httpGet: { path: ProbePaths.PRESTOP, port: k8s.IntOrString.fromNumber(Ports.PRESTOP) } } },
    resources: mesh.meshResources,
    securityContext: restrictedContainerSecurityContext(),
    volumeMounts: [
      { name: 'tc-config', mountPath: Mounts.CONFIG_DIR, readOnly: true },
      { name: 'etcd-config', mountPath: Mounts.ETCD_DIR, readOnly: true },
      { name: 'catalog', mountPath: Mounts.CATALOG_DIR, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      ...(mesh.etcd.clientTlsSecretName ? [{ name: 'etcd-tls', mountPath: Mounts.ETCD_TLS_DIR, readOnly: true }] : []),
      ...(mesh.tls ? [{ name: 'tls-certs', mountPath: Mounts.TLS_DIR, readOnly: true }] : []),
      ...(props.socketDir ? [{ name: 'domain-socket', mountPath: props.socketDir }] : []),
      ...(props.pullerMounts ?? []),
    ],
  };
}
