/**
 * The part of the Kubernetes object model the pod runner reads, typed after the API (core/v1, apps/v1). Fields the
 * runner does not understand are not listed; the runner refuses what it cannot reproduce instead of ignoring it.
 */

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Any synthesized object. */
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
}

export interface Secret extends K8sObject {
  readonly kind: 'Secret';
  /** base64-encoded values. */
  readonly data?: Readonly<Record<string, string>>;
  /** Plain values; the API server merges them into `data` on write. */
  readonly stringData?: Readonly<Record<string, string>>;
}

export interface ConfigMap extends K8sObject {
  readonly kind: 'ConfigMap';
  readonly data?: Readonly<Record<string, string>>;
  /** base64-encoded values. */
  readonly binaryData?: Readonly<Record<string, string>>;
}

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  /** A container port number or name; defaults to `port`. */
  readonly targetPort?: number | string;
  readonly protocol?: string;
}

export interface Service extends K8sObject {
  readonly kind: 'Service';
  readonly spec: {
    readonly clusterIP?: string;
    readonly selector?: Readonly<Record<string, string>>;
    readonly ports?: readonly ServicePort[];
  };
}

export interface KeyRef {
  readonly name: string;
  readonly key: string;
  readonly optional?: boolean;
}

export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: {
    readonly fieldRef?: { readonly fieldPath: string };
    readonly resourceFieldRef?: { readonly containerName?: string; readonly resource: string; readonly divisor?: string | number };
    readonly secretKeyRef?: KeyRef;
    readonly configMapKeyRef?: KeyRef;
  };
}

export interface EnvFromSource {
  readonly prefix?: string;
  readonly secretRef?: { readonly name: string; readonly optional?: boolean };
  readonly configMapRef?: { readonly name: string; readonly optional?: boolean };
}

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

export interface HttpGetAction {
  readonly path?: string;
  readonly port: number | string;
  readonly host?: string;
  readonly scheme?: string;
}

export interface Handler {
  readonly httpGet?: HttpGetAction;
  readonly tcpSocket?: { readonly port: number | string; readonly host?: string };
  readonly exec?: { readonly command: readonly string[] };
  readonly grpc?: { readonly port: number; readonly service?: string };
}

export interface Probe extends Handler {
  readonly timeoutSeconds?: number;
}

export interface VolumeMount {
  readonly name: string;
  readonly mountPath: string;
  readonly subPath?: string;
  readonly readOnly?: boolean;
}

export interface Container {
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly workingDir?: string;
  readonly env?: readonly EnvVar[];
  readonly envFrom?: readonly EnvFromSource[];
  readonly ports?: readonly ContainerPort[];
  readonly readinessProbe?: Probe;
  readonly livenessProbe?: Probe;
  readonly startupProbe?: Probe;
  readonly lifecycle?: { readonly preStop?: Handler; readonly postStart?: Handler };
  readonly resources?: {
    readonly requests?: Readonly<Record<string, string | number>>;
    readonly limits?: Readonly<Record<string, string | number>>;
  };
  readonly volumeMounts?: readonly VolumeMount[];
  readonly securityContext?: { readonly runAsUser?: number; readonly runAsGroup?: number };
}

export interface KeyToPath {
  readonly key: string;
  readonly path: string;
  readonly mode?: number;
}

/** A Secret or ConfigMap as a volume (or as one source of a projected volume). */
export interface ObjectVolumeSource {
  readonly items?: readonly KeyToPath[];
  readonly defaultMode?: number;
  readonly optional?: boolean;
}

export interface Volume {
  readonly name: string;
  readonly emptyDir?: { readonly sizeLimit?: string; readonly medium?: string };
  readonly configMap?: ObjectVolumeSource & { readonly name: string };
  readonly secret?: ObjectVolumeSource & { readonly secretName: string };
  readonly projected?: {
    readonly defaultMode?: number;
    readonly sources: readonly {
      readonly secret?: ObjectVolumeSource & { readonly name: string };
      readonly configMap?: ObjectVolumeSource & { readonly name: string };
    }[];
  };
  readonly persistentVolumeClaim?: { readonly claimName: string; readonly readOnly?: boolean };
}

export interface PodSecurityContext {
  readonly runAsUser?: number;
  readonly runAsGroup?: number;
  readonly fsGroup?: number;
}

export interface PodSpec {
  readonly containers: readonly Container[];
  readonly initContainers?: readonly Container[];
  readonly volumes?: readonly Volume[];
  readonly securityContext?: PodSecurityContext;
  readonly serviceAccountName?: string;
  readonly terminationGracePeriodSeconds?: number;
}

export interface PodTemplate {
  readonly metadata?: { readonly labels?: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>> };
  readonly spec: PodSpec;
}

export interface Workload extends K8sObject {
  readonly kind: 'Deployment' | 'StatefulSet';
  readonly spec: {
    readonly replicas?: number;
    /** StatefulSet: the governing headless Service, which gives each pod a DNS name. */
    readonly serviceName?: string;
    readonly template: PodTemplate;
    /** StatefulSet: one claim per pod and template. */
    readonly volumeClaimTemplates?: readonly { readonly metadata: { readonly name: string } }[];
  };
}
