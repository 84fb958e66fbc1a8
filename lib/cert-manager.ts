import { ApiObject, Chart, Duration } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import { checkName, invalid } from './errors';

/**
 * A cert-manager issuer that signs the platform's certificates: an `Issuer` in the chart's namespace or a
 * `ClusterIssuer`. It must write the CA into `ca.crt` (a CA or Vault issuer does; ACME and self-signed issuers do
 * not give a CA both sides can trust), because each side of a TLS connection checks the other against that file.
 */
export interface CertManagerIssuer {
  /** Name of the Issuer or ClusterIssuer. */
  readonly name: string;
  /** Kind of the issuer. @default "Issuer" */
  readonly kind?: 'Issuer' | 'ClusterIssuer';
  /** API group of the issuer, for external issuers. @default "cert-manager.io" */
  readonly group?: string;
}

/** The private key cert-manager generates for a certificate. */
export interface CertificatePrivateKey {
  /** Key algorithm. */
  readonly algorithm: 'RSA' | 'ECDSA';
  /** Key size in bits: 2048, 4096 or 8192 for RSA; 256, 384 or 521 for ECDSA. @default - 2048 for RSA, 256 for ECDSA */
  readonly size?: number;
}

/** Lifetime and key of the certificates cert-manager issues for the platform. */
export interface CertificateOptions {
  /** Requested lifetime; at least one hour. @default - the issuer's (cert-manager asks for 90 days) */
  readonly duration?: Duration;
  /** How long before expiry cert-manager renews; at least five minutes, less than `duration`. @default - a third of the lifetime */
  readonly renewBefore?: Duration;
  /** The private key, generated anew at every renewal. @default - ECDSA P-256 */
  readonly privateKey?: CertificatePrivateKey;
}

/** The key usages the platform's certificates request (cert-manager's spelling). */
export type CertificateUsage = 'digital signature' | 'key encipherment' | 'server auth' | 'client auth';

/** Props of {@link Certificate}. */
export interface CertificateProps extends CertificateOptions {
  /** Name of the Certificate and of the Secret cert-manager writes (`tls.crt`, `tls.key`, `ca.crt`). */
  readonly secretName: string;
  /** The issuer that signs it. */
  readonly issuer: CertManagerIssuer;
  /** What the certificate is for: `server auth`, `client auth` or both; the key usages follow from the key algorithm. */
  readonly purposes: ReadonlyArray<'server auth' | 'client auth'>;
  /** Common name of the subject. @default - none (servers are named by `dnsNames`) */
  readonly commonName?: string;
  /** DNS names the certificate is valid for. @default - none */
  readonly dnsNames?: readonly string[];
  /** IP addresses the certificate is valid for. @default - none */
  readonly ipAddresses?: readonly string[];
  /** Labels of the Certificate object. @default - none */
  readonly labels?: Readonly<Record<string, string>>;
}

const DEFAULT_PRIVATE_KEY: CertificatePrivateKey = { algorithm: 'ECDSA', size: 256 };
const KEY_SIZES: Readonly<Record<CertificatePrivateKey['algorithm'], readonly number[]>> = { RSA: [2048, 4096, 8192], ECDSA: [256, 384, 521] };

/**
 * A cert-manager `Certificate` (`cert-manager.io/v1`) in the chart's namespace: cert-manager keeps the Secret of the
 * same name filled with a key, a certificate signed by the issuer and the issuer's CA, and renews it before expiry.
 */
export class Certificate extends Construct {
  /** The Certificate object. */
  public readonly apiObject: ApiObject;
  /** Name of the Secret cert-manager writes. */
  public readonly secretName: string;

  public constructor(scope: Construct, id: string, props: CertificateProps) {
    super(scope, id);
    checkName(this, 'secretName', props.secretName, 253);
    checkCertManager(this, undefined, props.issuer, props);
    if (props.purposes.length === 0) invalid(this, 'purposes', 'must name at least one of "server auth" and "client auth"');
    if (props.commonName !== undefined && (props.commonName.length === 0 || props.commonName.length > 64)) {
      invalid(this, 'commonName', `must have 1 to 64 characters; got "${props.commonName}"`);
    }
    this.secretName = props.secretName;
    const privateKey = props.privateKey ?? DEFAULT_PRIVATE_KEY;
    // RSA key exchange encrypts with the certificate's key; ECDSA keys only sign.
    const usages: CertificateUsage[] = ['digital signature', ...(privateKey.algorithm === 'RSA' ? ['key encipherment' as const] : []), ...props.purposes];
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: props.secretName, labels: props.labels ? { ...props.labels } : undefined },
      spec: {
        secretName: props.secretName,
        issuerRef: {
          name: props.issuer.name,
          kind: props.issuer.kind ?? 'Issuer',
          group: props.issuer.group ?? 'cert-manager.io',
        },
        commonName: props.commonName,
        dnsNames: props.dnsNames ? [...props.dnsNames] : undefined,
        ipAddresses: props.ipAddresses ? [...props.ipAddresses] : undefined,
        usages,
        duration: props.duration ? goDuration(props.duration) : undefined,
        renewBefore: props.renewBefore ? goDuration(props.renewBefore) : undefined,
        privateKey: { algorithm: privateKey.algorithm, size: privateKey.size ?? KEY_SIZES[privateKey.algorithm][0], rotationPolicy: 'Always' },
      },
    });
  }
}

/**
 * Checks an issuer and the certificate options given with it. `field` is the props path they sit under (`tls` for
 * `tls.issuer` and `tls.certificate`); without it, the issuer and options are the props themselves (a `Certificate`'s).
 */
export function checkCertManager(scope: IConstruct, field: string | undefined, issuer: CertManagerIssuer, options: CertificateOptions = {}): void {
  const issuerField = field ? `${field}.issuer` : 'issuer';
  const option = (name: string) => (field ? `${field}.certificate.${name}` : name);
  if (!issuer.name) invalid(scope, `${issuerField}.name`, 'must name a cert-manager Issuer or ClusterIssuer; got ""');
  checkName(scope, `${issuerField}.name`, issuer.name, 253);
  if (issuer.kind !== undefined && issuer.kind !== 'Issuer' && issuer.kind !== 'ClusterIssuer') {
    invalid(scope, `${issuerField}.kind`, `must be "Issuer" or "ClusterIssuer"; got "${String(issuer.kind)}"`);
  }
  if (issuer.group !== undefined) checkName(scope, `${issuerField}.group`, issuer.group, 253);
  const { duration, renewBefore, privateKey } = options;
  if (duration && duration.toMilliseconds() < Duration.hours(1).toMilliseconds()) {
    invalid(scope, option('duration'), `must be at least one hour (cert-manager's minimum); got ${goDuration(duration)}`);
  }
  if (renewBefore && renewBefore.toMilliseconds() < Duration.minutes(5).toMilliseconds()) {
    invalid(scope, option('renewBefore'), `must be at least five minutes (cert-manager's minimum); got ${goDuration(renewBefore)}`);
  }
  if (duration && renewBefore && renewBefore.toMilliseconds() >= duration.toMilliseconds()) {
    invalid(scope, option('renewBefore'), `must be shorter than duration (${goDuration(duration)}); got ${goDuration(renewBefore)}`);
  }
  if (privateKey) {
    const sizes = KEY_SIZES[privateKey.algorithm] as readonly number[] | undefined;
    if (!sizes) invalid(scope, option('privateKey.algorithm'), `must be "RSA" or "ECDSA"; got "${String(privateKey.algorithm)}"`);
    if (privateKey.size !== undefined && !sizes.includes(privateKey.size)) {
      invalid(scope, option('privateKey.size'), `must be ${sizes.join(', ')} for ${privateKey.algorithm}; got ${privateKey.size}`);
    }
  }
}

/**
 * The chart's namespace, which certificates need for their DNS names (`<service>.<namespace>.svc`); throws, naming
 * `field`, when the chart has none.
 */
export function namespaceForCertificates(scope: IConstruct, field: string): string {
  const namespace = Chart.of(scope).namespace;
  if (!namespace) {
    invalid(scope, field, "needs the chart's namespace to write the certificate's DNS names (<service>.<namespace>.svc): set namespace in the Chart's props");
  }
  return namespace;
}

/** The DNS names of a Service in a namespace: `<name>`, `<name>.<ns>`, `<name>.<ns>.svc`, `<name>.<ns>.svc.cluster.local`. */
export function serviceDnsNames(name: string, namespace: string): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];
}

/** A duration as Go's `time.ParseDuration` reads it, in the largest whole unit: `2160h`, `90m`, `45s`. */
function goDuration(duration: Duration): string {
  const ms = duration.toMilliseconds();
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
