import { ApiObject } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Mounts, ObjectNames } from './contract';
import { checkName, invalid } from './errors';
import type { EtcdClusterProps } from './etcd-cluster';

/** The `etcd_connection` JSON document the mesh reads (upstream's field names). */
export interface EtcdConnectionDocument {
  /** Comma-separated client URLs. */
  readonly endpoints: string;
  /** Key prefix of the mesh inside etcd. */
  readonly root_prefix?: string;
  /** CA certificate file that etcd's server certificate chains to. */
  readonly certificate_file?: string;
  /** Client certificate file. */
  readonly client_certificate_file?: string;
  /** Client key file. */
  readonly client_key_file?: string;
}

/** Client TLS towards etcd. */
export interface EtcdClientTls {
  /**
   * Secret with `ca.crt` (the CA that signed etcd's server certificate) and `tls.crt` / `tls.key` (the client
   * certificate the mesh presents), as cert-manager writes them. It is mounted into the mesh container.
   */
  readonly clientSecretName: string;
}

/** Props of {@link EtcdConnection.external}. */
export interface ExternalEtcdProps {
  /**
   * Client URLs of the etcd members, e.g. `["https://etcd-0.etcd:2379"]`. The connection Secret is generated from them.
   * Mutually exclusive with `secretName`. @default - none
   */
  readonly endpoints?: readonly string[];
  /** Key prefix for this mesh inside etcd. @default "modelmesh-serving" */
  readonly rootPrefix?: string;
  /**
   * An existing Secret holding the `etcd_connection` key (upstream's JSON, e.g. with `userid` and `password`): use it
   * when the connection carries credentials, which must not be written into the synthesized YAML.
   * Mutually exclusive with `endpoints`. @default - a Secret named `model-serving-etcd` is generated from `endpoints`
   */
  readonly secretName?: string;
  /** Client TLS, for `https://` endpoints. @default - no TLS */
  readonly tls?: EtcdClientTls;
}

/** What the serving-runtime pods need to reach etcd. */
export interface EtcdBinding {
  /** Secret with the `etcd_connection` key, mounted at `/opt/kserve/mmesh/etcd`. */
  readonly secretName: string;
  /** Secret with the client certificate and CA, mounted at `/opt/kserve/mmesh/etcd-tls`. */
  readonly clientTlsSecretName?: string;
}

/** Default key prefix inside etcd, as upstream's quickstart uses. */
export const DEFAULT_ROOT_PREFIX = 'modelmesh-serving';

/** How the mesh reaches etcd: an `EtcdCluster` the mesh creates, or an etcd that already exists. */
export class EtcdConnection {
  /** Creates an `EtcdCluster` in the mesh's namespace and connects to it. */
  public static cluster(props: EtcdClusterProps = {}): EtcdConnection {
    return new EtcdConnection(props, undefined);
  }

  /** Uses an etcd that already exists (outside the chart). */
  public static external(props: ExternalEtcdProps): EtcdConnection {
    return new EtcdConnection(undefined, props);
  }

  private constructor(
    /** Props of the cluster to create, when this connection creates one. */
    public readonly clusterProps: EtcdClusterProps | undefined,
    /** Props of the external etcd, when this connection uses one. */
    public readonly externalProps: ExternalEtcdProps | undefined,
  ) {}

  /**
   * Checks the external props and, unless an existing Secret is named, creates the connection Secret in `scope`.
   * Used by `ModelMesh`; a connection made with `cluster()` is bound by the `EtcdCluster` instead.
   */
  public bindExternal(scope: Construct): EtcdBinding {
    const props = this.externalProps;
    if (!props) throw new Error(`${scope.node.path}: bindExternal() needs a connection made with EtcdConnection.external()`);
    if (props.secretName !== undefined && props.endpoints !== undefined) {
      invalid(scope, 'etcd', 'gives both endpoints and secretName: the Secret already holds the endpoints; give one of them');
    }
    if (props.secretName !== undefined) {
      checkName(scope, 'etcd.secretName', props.secretName, 253);
      return { secretName: props.secretName, clientTlsSecretName: props.tls?.clientSecretName };
    }
    if (!props.endpoints || props.endpoints.length === 0) {
      invalid(scope, 'etcd.endpoints', 'must list at least one etcd client URL (or name an existing Secret with secretName)');
    }
    for (const endpoint of props.endpoints) {
      if (!/^https?:\/\/[^\s,]+$/.test(endpoint)) invalid(scope, 'etcd.endpoints', `must be http:// or https:// URLs; got "${endpoint}"`);
      if (props.tls && endpoint.startsWith('http://')) invalid(scope, 'etcd.endpoints', `must use https:// when tls is set; got "${endpoint}"`);
    }
    const document = connectionDocument(props.endpoints, props.rootPrefix ?? DEFAULT_ROOT_PREFIX, props.tls !== undefined);
    connectionSecret(scope, 'EtcdConnection', ObjectNames.ETCD_SECRET, document);
    return { secretName: ObjectNames.ETCD_SECRET, clientTlsSecretName: props.tls?.clientSecretName };
  }
}

/** The `etcd_connection` JSON for the given endpoints; with TLS it points at the files of the mounted client Secret. */
export function connectionDocument(endpoints: readonly string[], rootPrefix: string, tls: boolean): EtcdConnectionDocument {
  return {
    endpoints: endpoints.join(','),
    root_prefix: rootPrefix,
    ...(tls ? {
      certificate_file: `${Mounts.ETCD_TLS_DIR}/ca.crt`,
      client_certificate_file: `${Mounts.ETCD_TLS_DIR}/tls.crt`,
      client_key_file: `${Mounts.ETCD_TLS_DIR}/tls.key`,
    } : {}),
  };
}

/** The Secret holding `etcd_connection`. */
export function connectionSecret(scope: Construct, id: string, name: string, document: EtcdConnectionDocument): ApiObject {
  return new k8s.KubeSecret(scope, id, {
    metadata: { name },
    type: 'Opaque',
    stringData: { [Mounts.ETCD_CONNECTION_KEY]: JSON.stringify(document) },
  });
}
