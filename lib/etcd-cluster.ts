import { ApiObject, Duration } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { CertManagerIssuer, Certificate, CertificateOptions, checkCertManager, namespaceForCertificates, serviceDnsNames } from './cert-manager';
import { ObjectNames } from './contract';
import { checkName, invalid } from './errors';
import { DEFAULT_ROOT_PREFIX, EtcdBinding, connectionDocument, connectionSecret } from './etcd-connection';
import { Images } from './images';
import { parseBytes } from './quantity';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from './security';

/**
 * TLS for the etcd members' client port, with client-certificate authentication. Either name two Secrets you provide
 * (`serverSecretName` and `clientSecretName`), or give an `issuer` and the chart adds cert-manager Certificates that
 * write them: `<name>-server-tls` and `<name>-client-tls`.
 */
export interface EtcdClusterTls {
  /**
   * Secret with etcd's server certificate: `tls.crt` and `tls.key` (valid for `<name>`, `<name>.<namespace>.svc` and
   * `*.<name>-headless.<namespace>.svc`, and usable for client auth too: etcd's gRPC gateway presents it to its own
   * client port) and `ca.crt`, the CA that client certificates must chain to.
   * Mutually exclusive with `issuer`. @default - with `issuer`, `<name>-server-tls`, written by cert-manager
   */
  readonly serverSecretName?: string;
  /**
   * Secret with the mesh's client certificate (`tls.crt`, `tls.key`) and the CA of the server (`ca.crt`).
   * Mutually exclusive with `issuer`. @default - with `issuer`, `<name>-client-tls`, written by cert-manager
   */
  readonly clientSecretName?: string;
  /**
   * A cert-manager issuer that signs both certificates; the chart then adds their Certificates and needs a namespace
   * (the Chart's) for the server's DNS names. Mutually exclusive with the secret names. @default - you provide the Secrets
   */
  readonly issuer?: CertManagerIssuer;
  /** Lifetime and key of the certificates cert-manager issues; only with `issuer`. @default - see CertificateOptions */
  readonly certificate?: CertificateOptions;
  /**
   * Common name of the mesh's client certificate, which etcd takes as the user name when its authentication is on;
   * only with `issuer`. @default - the mesh's serviceName when a ModelMesh creates the cluster, else "modelmesh-serving"
   */
  readonly clientCommonName?: string;
}

/** Props of {@link EtcdCluster}. */
export interface EtcdClusterProps {
  /** Number of etcd members: 1 for development, 3 or 5 for production. @default 3 */
  readonly replicas?: number;
  /** Name of the StatefulSet and client Service; the headless Service is `<name>-headless`. @default "modelmesh-etcd" */
  readonly name?: string;
  /** Size of each member's volume. @default "1Gi" */
  readonly storageSize?: string;
  /** Storage class of the members' volumes. @default - the cluster's default class */
  readonly storageClassName?: string;
  /** etcd image. @default Images.ETCD */
  readonly image?: string;
  /** Key prefix for the mesh inside etcd (`root_prefix`). @default "modelmesh-serving" */
  readonly rootPrefix?: string;
  /** Client TLS with client-certificate authentication. @default - plain HTTP inside the namespace */
  readonly tls?: EtcdClusterTls;
  /** Memory request and limit of each member. @default "512Mi" */
  readonly memory?: string;
  /** CPU request of each member. @default "100m" */
  readonly cpuRequest?: string;
  /** Admit client traffic only from pods with these labels (plus the members themselves). @default - any pod in the namespace */
  readonly clientSelector?: Readonly<Record<string, string>>;
}

/** The Secrets the members and the mesh mount, whoever writes them. */
interface TlsSecrets {
  readonly serverSecretName: string;
  readonly clientSecretName: string;
}

const CLIENT_PORT = 2379;
const PEER_PORT = 2380;
const METRICS_PORT = 2381;
const DATA_DIR = '/var/run/etcd';
const TLS_DIR = '/etc/etcd/tls';

/**
 * An etcd cluster for the mesh: a StatefulSet (members spread across nodes, one volume each), a headless Service that
 * gives members stable DNS names, a client Service, a PodDisruptionBudget that keeps a quorum, a NetworkPolicy, and
 * the `model-serving-etcd` Secret with the `etcd_connection` JSON the mesh reads; with `tls.issuer`, the cert-manager
 * Certificates of the server and of the mesh's client.
 */
export class EtcdCluster extends Construct {
  /** Number of members. */
  public readonly replicas: number;
  /** Name of the StatefulSet and the client Service. */
  public readonly name: string;
  /** Name of the headless peer Service. */
  public readonly headlessServiceName: string;
  /** Key prefix of the mesh inside etcd. */
  public readonly rootPrefix: string;
  /** Name of the Secret with `etcd_connection`. */
  public readonly secretName: string = ObjectNames.ETCD_SECRET;
  /** The client URL the mesh connects to. */
  public readonly clientEndpoint: string;
  /** The StatefulSet. */
  public readonly statefulSet: ApiObject;
  /** etcd's server certificate, when cert-manager issues it (`tls.issuer`). */
  public readonly serverCertificate?: Certificate;
  /** The mesh's client certificate, when cert-manager issues it (`tls.issuer`). */
  public readonly clientCertificate?: Certificate;
  private readonly tls?: TlsSecrets;

  public constructor(scope: Construct, id: string, props: EtcdClusterProps = {}) {
    super(scope, id);
    this.replicas = props.replicas ?? 3;
    if (!Number.isInteger(this.replicas) || this.replicas < 1 || this.replicas % 2 === 0 || this.replicas > 7) {
      invalid(this, 'replicas', `must be odd (1, 3, 5…) to keep a quorum, and at most 7; got ${this.replicas}`);
    }
    this.name = props.name ?? 'modelmesh-etcd';
    checkName(this, 'name', this.name, 52);
    this.headlessServiceName = `${this.name}-headless`;
    this.rootPrefix = props.rootPrefix ?? DEFAULT_ROOT_PREFIX;
    const storageSize = props.storageSize ?? '1Gi';
    if (parseBytes(storageSize) === undefined) invalid(this, 'storageSize', `must be a quantity such as "1Gi"; got "${storageSize}"`);
    const memory = props.memory ?? '512Mi';
    if (parseBytes(memory) === undefined) invalid(this, 'memory', `must be a quantity such as "512Mi"; got "${memory}"`);
    this.tls = props.tls && this.tlsSecrets(props.tls);
    const scheme = this.tls ? 'https' : 'http';
    this.clientEndpoint = `${scheme}://${this.name}:${CLIENT_PORT}`;

    const labels = { 'app.kubernetes.io/name': 'etcd', 'app.kubernetes.io/instance': this.name, 'app.kubernetes.io/part-of': 'modelmesh' };

    new k8s.KubeService(this, 'Headless', {
      metadata: { name: this.headlessServiceName, labels },
      spec: {
        clusterIp: 'None',
        publishNotReadyAddresses: true,
        selector: labels,
        ports: [
          { name: 'client', port: CLIENT_PORT, targetPort: k8s.IntOrString.fromString('client') },
          { name: 'peer', port: PEER_PORT, targetPort: k8s.IntOrString.fromString('peer') },
        ],
      },
    });
    new k8s.KubeService(this, 'Client', {
      metadata: { name: this.name, labels },
      spec: {
        selector: labels,
        ports: [{ name: 'client', port: CLIENT_PORT, targetPort: k8s.IntOrString.fromString('client') }],
      },
    });

    this.statefulSet = new k8s.KubeStatefulSet(this, 'Resource', {
      metadata: { name: this.name, labels },
      spec: {
        replicas: this.replicas,
        serviceName: this.headlessServiceName,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: restrictedPodSecurityContext(),
            terminationGracePeriodSeconds: Duration.seconds(30).toSeconds(),
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [{
                  weight: 100,
                  podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: labels } },
                }],
              },
            },
            containers: [this.container(props, memory)],
            volumes: this.tls ? [{ name: 'tls', secret: { secretName: this.tls.serverSecretName, defaultMode: 0o440 } }] : undefined,
          },
        },
        volumeClaimTemplates: [{
          metadata: { name: 'data' },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: props.storageClassName,
            resources: { requests: { storage: k8s.Quantity.fromString(storageSize) } },
          },
        }],
      },
    });

    if (this.replicas >= 3) {
      new k8s.KubePodDisruptionBudget(this, 'Budget', {
        metadata: { name: this.name, labels },
        spec: { maxUnavailable: k8s.IntOrString.fromNumber((this.replicas - 1) / 2), selector: { matchLabels: labels } },
      });
    }

    new k8s.KubeNetworkPolicy(this, 'NetworkPolicy', {
      metadata: { name: this.name, labels },
      spec: {
        podSelector: { matchLabels: labels },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [{ podSelector: { matchLabels: labels } }],
            ports: [CLIENT_PORT, PEER_PORT].map((port) => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' })),
          },
          {
            from: [{ podSelector: props.clientSelector ? { matchLabels: { ...props.clientSelector } } : {} }],
            ports: [{ port: k8s.IntOrString.fromNumber(CLIENT_PORT), protocol: 'TCP' }],
          },
        ],
      },
    });

    if (props.tls?.issuer && this.tls) {
      const namespace = namespaceForCertificates(this, 'tls.issuer');
      const headless = `*.${this.headlessServiceName}.${namespace}.svc`;
      this.serverCertificate = new Certificate(this, 'ServerCertificate', {
        ...props.tls.certificate,
        secretName: this.tls.serverSecretName,
        issuer: props.tls.issuer,
        // Client auth too: etcd's gRPC gateway dials its own client port with this certificate, and --client-cert-auth checks it.
        purposes: ['server auth', 'client auth'],
        // Loopback for etcdctl inside a member pod, whose default endpoint is 127.0.0.1:2379.
        dnsNames: [...serviceDnsNames(this.name, namespace), headless, `${headless}.cluster.local`, 'localhost'],
        ipAddresses: ['127.0.0.1'],
        labels,
      });
      this.clientCertificate = new Certificate(this, 'ClientCertificate', {
        ...props.tls.certificate,
        secretName: this.tls.clientSecretName,
        issuer: props.tls.issuer,
        purposes: ['client auth'],
        commonName: props.tls.clientCommonName ?? ObjectNames.SERVICE,
        labels,
      });
    }

    connectionSecret(this, 'Connection', this.secretName, connectionDocument([this.clientEndpoint], this.rootPrefix, !!this.tls));
  }

  /** What the serving-runtime pods mount to reach this cluster. */
  public get binding(): EtcdBinding {
    return { secretName: this.secretName, clientTlsSecretName: this.tls?.clientSecretName };
  }

  private tlsSecrets(tls: EtcdClusterTls): TlsSecrets {
    const generated = { serverSecretName: `${this.name}-server-tls`, clientSecretName: `${this.name}-client-tls` };
    if (tls.issuer) {
      const named = (['serverSecretName', 'clientSecretName'] as const).filter((field) => tls[field] !== undefined);
      if (named.length > 0) {
        invalid(this, 'tls', `gives both issuer and ${named.join(' and ')}: with issuer, cert-manager writes the Secrets `
          + `"${generated.serverSecretName}" and "${generated.clientSecretName}"; give one or the other`);
      }
      checkCertManager(this, 'tls', tls.issuer, tls.certificate);
      if (tls.clientCommonName !== undefined && (tls.clientCommonName.length === 0 || tls.clientCommonName.length > 64)) {
        invalid(this, 'tls.clientCommonName', `must have 1 to 64 characters; got "${tls.clientCommonName}"`);
      }
      return generated;
    }
    for (const field of ['certificate', 'clientCommonName'] as const) {
      if (tls[field] !== undefined) invalid(this, `tls.${field}`, 'only applies with tls.issuer (cert-manager issues the certificates); give an issuer or drop it');
    }
    if (tls.serverSecretName === undefined || tls.clientSecretName === undefined) {
      invalid(this, 'tls', 'needs either issuer (cert-manager issues the certificates) or both serverSecretName and clientSecretName (Secrets you provide)');
    }
    checkName(this, 'tls.serverSecretName', tls.serverSecretName, 253);
    checkName(this, 'tls.clientSecretName', tls.clientSecretName, 253);
    return { serverSecretName: tls.serverSecretName, clientSecretName: tls.clientSecretName };
  }

  private container(props: EtcdClusterProps, memory: string): k8s.Container {
    const scheme = this.tls ? 'https' : 'http';
    const peerHost = (member: string) => `${member}.${this.headlessServiceName}.$(POD_NAMESPACE).svc`;
    const initialCluster = Array.from({ length: this.replicas }, (_, i) => `${this.name}-${i}`)
      .map((member) => `${member}=http://${peerHost(member)}:${PEER_PORT}`).join(',');
    const tlsArgs = this.tls ? [
      `--cert-file=${TLS_DIR}/tls.crt`,
      `--key-file=${TLS_DIR}/tls.key`,
      `--trusted-ca-file=${TLS_DIR}/ca.crt`,
      '--client-cert-auth=true',
    ] : [];
    return {
      name: 'etcd',
      image: props.image ?? Images.ETCD,
      command: ['/usr/local/bin/etcd'],
      args: [
        '--name=$(POD_NAME)',
        `--data-dir=${DATA_DIR}/data`,
        `--listen-client-urls=${scheme}://0.0.0.0:${CLIENT_PORT}`,
        `--advertise-client-urls=${scheme}://${peerHost('$(POD_NAME)')}:${CLIENT_PORT}`,
        `--listen-peer-urls=http://0.0.0.0:${PEER_PORT}`,
        `--initial-advertise-peer-urls=http://${peerHost('$(POD_NAME)')}:${PEER_PORT}`,
        `--listen-metrics-urls=http://0.0.0.0:${METRICS_PORT}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${this.name}`,
        '--initial-cluster-state=new',
        '--auto-compaction-mode=periodic',
        '--auto-compaction-retention=1h',
        ...tlsArgs,
      ],
      env: [
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      ],
      ports: [
        { name: 'client', containerPort: CLIENT_PORT, protocol: 'TCP' },
        { name: 'peer', containerPort: PEER_PORT, protocol: 'TCP' },
        { name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' },
      ],
      readinessProbe: {
        httpGet: { path: '/health', port: k8s.IntOrString.fromNumber(METRICS_PORT) },
        initialDelaySeconds: 5,
        periodSeconds: 10,
        failureThreshold: 3,
      },
      livenessProbe: {
        tcpSocket: { port: k8s.IntOrString.fromNumber(CLIENT_PORT) },
        initialDelaySeconds: 15,
        periodSeconds: 20,
        failureThreshold: 3,
      },
      resources: {
        requests: { cpu: k8s.Quantity.fromString(props.cpuRequest ?? '100m'), memory: k8s.Quantity.fromString(memory) },
        limits: { memory: k8s.Quantity.fromString(memory) },
      },
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [
        { name: 'data', mountPath: DATA_DIR },
        ...(this.tls ? [{ name: 'tls', mountPath: TLS_DIR, readOnly: true }] : []),
      ],
    };
  }
}
