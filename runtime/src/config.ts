import { hostname } from 'node:os';
import { MeshEnv, Mounts, Ports, StoreDefaults } from '../../lib/contract';

/**
 * Turns the environment into one frozen, validated MeshConfig. Bad values stop start-up with the variable's name
 * and what was expected; nothing below this module reads process.env.
 */

export class ConfigError extends Error {
  constructor(public readonly variable: string, message: string) {
    super(`${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

/** A runtime endpoint inside the pod: a localhost TCP port or a Unix socket. */
export type RuntimeEndpoint = { readonly kind: 'port'; readonly port: number } | { readonly kind: 'socket'; readonly path: string };

export interface MetricsConfig {
  readonly enabled: boolean;
  readonly port: number;
  readonly scheme: 'http' | 'https';
  /** Add modelId / vModelId labels to per-request metrics. */
  readonly perModelMetrics: boolean;
}

export interface TlsConfig {
  readonly certPath: string;
  readonly keyPath: string;
  readonly clientAuth: 'none' | 'optional' | 'require';
  readonly trustCertPaths: readonly string[];
}

/** The built-in puller's folders (on when `STORAGE_CONFIG_DIR` is set). */
export interface PullerConfig {
  readonly storageConfigDir: string;
  readonly rootModelDir: string;
  readonly pvcMountsDir: string;
}

export interface MeshConfig {
  readonly serviceName: string;
  readonly instanceId: string;
  /** Address (no port) other instances use to reach this one. */
  readonly advertiseAddress: string;
  readonly grpcPort: number;
  /** 0 = REST off. */
  readonly restPort: number;
  readonly probePort: number;
  readonly prestopPort: number;
  readonly metrics: MetricsConfig;
  /** `embedded` or `etcd:<file or endpoints>`, validated in form only here; the kv module parses the rest. */
  readonly kvStore: string;
  readonly kvPrefix: string;
  /** TTL of this instance's lease: a vanished instance's records are gone this long after it stopped renewing. */
  readonly leaseTtlSeconds: number;
  readonly runtimeSpi: RuntimeEndpoint;
  readonly runtimeData: RuntimeEndpoint;
  readonly labels: readonly string[];
  readonly zone?: string;
  readonly location?: string;
  readonly typeConstraintsPath?: string;
  readonly dataplaneConfigPath?: string;
  readonly catalogPath?: string;
  readonly defaultVModelOwner?: string;
  readonly shutdownTimeoutMs: number;
  readonly scaleUpRpmThreshold: number;
  /** Deadline of data-plane calls without grpc-timeout. */
  readonly defaultRequestTimeoutMs: number;
  /** Calls that may wait for a copy at its concurrency limit. */
  readonly maxQueuedPerCopy: number;
  readonly loadFailureExpiryMs: number;
  /** Start-up fail-fast window after start; 0 = check off. */
  readonly failFastClearanceMs: number;
  readonly maxMessageSize: number;
  /** Idle front-door connections are closed after this long. */
  readonly idleConnectionTimeoutMs: number;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** One log line per data-plane call. */
  readonly logEachInvoke: boolean;
  /** Old-generation growth allowed between full collections, percent; 0 = V8's own policy. */
  readonly heapGrowthPercent: number;
  /** A just-in-time load here still running after this long is claimed in the registry; 0: at once. */
  readonly loadClaimDelayMs: number;
  readonly tls?: TlsConfig;
  /** Absent: the runtime (or its adapter) fetches models itself and receives the registered path and key. */
  readonly puller?: PullerConfig;
  readonly version: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function text(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number, what = 'an integer'): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be ${what}, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be ${what} between ${min} and ${max}, got ${value}`);
  return value;
}

const port = (env: Env, name: string, fallback: number, allowZero = false) =>
  integer(env, name, fallback, allowZero ? 0 : 1, 65535, 'a port number');

function endpoint(env: Env, portVar: string, socketVar: string, fallback: RuntimeEndpoint): RuntimeEndpoint {
  const socketPath = text(env, socketVar);
  const hasPort = text(env, portVar) !== undefined;
  if (socketPath && hasPort) throw new ConfigError(socketVar, `and ${portVar} are mutually exclusive; set only one`);
  if (socketPath) return { kind: 'socket', path: socketPath };
  if (hasPort) return { kind: 'port', port: port(env, portVar, 0) };
  return fallback;
}

/** `prometheus:port=2112;scheme=http;per_model_metrics=true`, or `disabled`. */
export function parseMetrics(raw: string | undefined): MetricsConfig {
  const defaults: MetricsConfig = { enabled: true, port: Ports.METRICS, scheme: 'http', perModelMetrics: false };
  if (raw === undefined || raw.trim() === '') return defaults;
  const value = raw.trim();
  if (value === 'disabled') return { ...defaults, enabled: false };
  const [kind, params = ''] = value.split(/:(.*)/s, 2);
  if (kind !== 'prometheus') {
    throw new ConfigError(MeshEnv.METRICS, `must be "disabled" or "prometheus[:port=<n>;scheme=http|https]", got "${value}"`);
  }
  let result = { ...defaults };
  for (const part of params.split(';').map((p) => p.trim()).filter(Boolean)) {
    const [key, val = ''] = part.split('=', 2).map((s) => s.trim());
    if (key === 'port') result = { ...result, port: port({ [MeshEnv.METRICS]: val }, MeshEnv.METRICS, Ports.METRICS) };
    else if (key === 'scheme' && (val === 'http' || val === 'https')) result = { ...result, scheme: val };
    else if (key === 'per_model_metrics' && (val === 'true' || val === 'false')) result = { ...result, perModelMetrics: val === 'true' };
    else throw new ConfigError(MeshEnv.METRICS, `has an unknown or malformed parameter "${part}" (known: port, scheme=http|https, per_model_metrics=true|false)`);
  }
  return result;
}

function tls(env: Env): TlsConfig | undefined {
  const certPath = text(env, MeshEnv.TLS_KEY_CERT_PATH);
  const keyPath = text(env, MeshEnv.TLS_PRIVATE_KEY_PATH);
  const clientAuthRaw = (text(env, MeshEnv.TLS_CLIENT_AUTH) ?? 'none').toLowerCase();
  if (!['none', 'optional', 'require'].includes(clientAuthRaw)) {
    throw new ConfigError(MeshEnv.TLS_CLIENT_AUTH, `must be none, optional or require, got "${clientAuthRaw}"`);
  }
  if (!certPath && !keyPath) {
    if (clientAuthRaw !== 'none') throw new ConfigError(MeshEnv.TLS_CLIENT_AUTH, `needs ${MeshEnv.TLS_KEY_CERT_PATH} and ${MeshEnv.TLS_PRIVATE_KEY_PATH}`);
    return undefined;
  }
  if (!certPath) throw new ConfigError(MeshEnv.TLS_KEY_CERT_PATH, `must be set when ${MeshEnv.TLS_PRIVATE_KEY_PATH} is`);
  if (!keyPath) throw new ConfigError(MeshEnv.TLS_PRIVATE_KEY_PATH, `must be set when ${MeshEnv.TLS_KEY_CERT_PATH} is`);
  const trust = (text(env, MeshEnv.TLS_TRUST_CERT_PATH) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return { certPath, keyPath, clientAuth: clientAuthRaw as TlsConfig['clientAuth'], trustCertPaths: trust };
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const value = (text(env, name) ?? String(fallback)).toLowerCase();
  if (value !== 'true' && value !== 'false') throw new ConfigError(name, `must be true or false, got "${value}"`);
  return value === 'true';
}

function failFastClearance(env: Env): number {
  const period = integer(env, MeshEnv.BOOTSTRAP_CLEARANCE_PERIOD_MS, 180_000, 0, 86_400_000);
  return flag(env, MeshEnv.FAILFAST_UPGRADE_ENABLED, true) ? period : 0;
}

function puller(env: Env): PullerConfig | undefined {
  const storageConfigDir = text(env, MeshEnv.STORAGE_CONFIG_DIR);
  if (!storageConfigDir) {
    if (text(env, MeshEnv.ROOT_MODEL_DIR)) throw new ConfigError(MeshEnv.ROOT_MODEL_DIR, `only applies with ${MeshEnv.STORAGE_CONFIG_DIR}, which turns the built-in puller on`);
    return undefined;
  }
  return {
    storageConfigDir,
    rootModelDir: text(env, MeshEnv.ROOT_MODEL_DIR) ?? Mounts.MODELS_DIR,
    pvcMountsDir: text(env, MeshEnv.PVC_MOUNTS_DIR) ?? Mounts.PVC_MOUNTS_DIR,
  };
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Reads the mesh's settings from `env`. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env, version: string, host: () => string = hostname, pid = process.pid): MeshConfig {
  const serviceName = text(env, MeshEnv.SERVICE_NAME);
  if (!serviceName) throw new ConfigError(MeshEnv.SERVICE_NAME, 'is required: the name of the mesh (e.g. modelmesh-serving)');
  if (!ID_PATTERN.test(serviceName)) throw new ConfigError(MeshEnv.SERVICE_NAME, `must be letters, digits, '.', '_' or '-' (at most 63), got "${serviceName}"`);

  const kvStore = text(env, MeshEnv.KV_STORE);
  if (!kvStore) throw new ConfigError(MeshEnv.KV_STORE, 'is required: "etcd:<path to etcd_connection JSON>", "etcd:<host:port>" or "embedded"');
  if (kvStore !== 'embedded' && !/^etcd:.+/.test(kvStore)) {
    throw new ConfigError(MeshEnv.KV_STORE, `must be "etcd:<path to etcd_connection JSON>", "etcd:<host:port>" or "embedded", got "${kvStore}"`);
  }
  const kvPrefix = text(env, MeshEnv.KV_STORE_PREFIX) ?? StoreDefaults.KV_STORE_PREFIX;
  if (/[\s/]/.test(kvPrefix)) throw new ConfigError(MeshEnv.KV_STORE_PREFIX, `must not contain '/' or whitespace, got "${kvPrefix}"`);

  const podName = text(env, MeshEnv.POD_NAME);
  const instanceId = text(env, MeshEnv.INSTANCE_ID) ?? (podName ? podName.slice(-12) : `${host()}-${pid}`);
  if (!ID_PATTERN.test(instanceId)) throw new ConfigError(MeshEnv.INSTANCE_ID, `must be letters, digits, '.', '_' or '-' (at most 63), got "${instanceId}"`);

  const runtimeSpi = endpoint(env, MeshEnv.RUNTIME_SPI_PORT, MeshEnv.RUNTIME_SPI_SOCKET, { kind: 'port', port: Ports.RUNTIME_SPI });
  const runtimeData = endpoint(env, MeshEnv.RUNTIME_DATA_PORT, MeshEnv.RUNTIME_DATA_SOCKET, runtimeSpi);

  const labels = (text(env, MeshEnv.LABELS) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const logLevel = (text(env, MeshEnv.LOG_LEVEL) ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(MeshEnv.LOG_LEVEL, `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  const config: MeshConfig = {
    serviceName,
    instanceId,
    advertiseAddress: text(env, MeshEnv.POD_IP) ?? '127.0.0.1',
    grpcPort: port(env, MeshEnv.GRPC_PORT, Ports.GRPC),
    restPort: port(env, MeshEnv.REST_PORT, Ports.REST, true),
    probePort: port(env, MeshEnv.PROBE_PORT, Ports.PROBE),
    prestopPort: port(env, MeshEnv.PRESTOP_PORT, Ports.PRESTOP),
    metrics: parseMetrics(env[MeshEnv.METRICS]),
    kvStore,
    kvPrefix,
    leaseTtlSeconds: integer(env, MeshEnv.LEASE_TTL_SECONDS, 10, 2, 300),
    runtimeSpi,
    runtimeData,
    labels,
    zone: text(env, MeshEnv.ZONE),
    location: text(env, MeshEnv.LOCATION),
    typeConstraintsPath: text(env, MeshEnv.TYPE_CONSTRAINTS_PATH),
    dataplaneConfigPath: text(env, MeshEnv.DATAPLANE_CONFIG_PATH),
    catalogPath: text(env, MeshEnv.CATALOG_PATH),
    defaultVModelOwner: text(env, MeshEnv.DEFAULT_VMODEL_OWNER),
    shutdownTimeoutMs: integer(env, MeshEnv.SHUTDOWN_TIMEOUT_MS, 30_000, 0, 3_600_000),
    scaleUpRpmThreshold: integer(env, MeshEnv.SCALEUP_RPM_THRESHOLD, 2_000, 1, 10_000_000),
    defaultRequestTimeoutMs: integer(env, MeshEnv.DEFAULT_REQUEST_TIMEOUT_MS, 120_000, 1, 3_600_000),
    maxQueuedPerCopy: integer(env, MeshEnv.MAX_QUEUED_PER_COPY, 1_000, 0, 1_000_000),
    loadFailureExpiryMs: integer(env, MeshEnv.LOAD_FAILURE_EXPIRY_TIME_MS, 900_000, 1_000, 86_400_000),
    failFastClearanceMs: failFastClearance(env),
    maxMessageSize: integer(env, MeshEnv.GRPC_MAX_MSG_SIZE, 16 * 1024 * 1024, 1024, 2 ** 31 - 1),
    idleConnectionTimeoutMs: integer(env, MeshEnv.IDLE_CONNECTION_TIMEOUT_MS, 300_000, 1_000, 86_400_000),
    logLevel: logLevel as MeshConfig['logLevel'],
    logEachInvoke: flag(env, MeshEnv.LOG_EACH_INVOKE, false),
    heapGrowthPercent: integer(env, MeshEnv.HEAP_GROWTH_PERCENT, 50, 0, 1_000),
    loadClaimDelayMs: integer(env, MeshEnv.LOAD_CLAIM_DELAY_MS, 10, 0, 60_000),
    tls: tls(env),
    puller: puller(env),
    version,
  };
  if (config.metrics.enabled && config.metrics.scheme === 'https' && !config.tls) {
    throw new ConfigError(MeshEnv.METRICS, `scheme=https serves the front door's certificate: set ${MeshEnv.TLS_KEY_CERT_PATH} and ${MeshEnv.TLS_PRIVATE_KEY_PATH}, or use scheme=http`);
  }
  const ports = [['MM_SVC_GRPC_PORT', config.grpcPort], ['MM_REST_PORT', config.restPort], ['MM_PROBE_PORT', config.probePort],
    ['MM_PRESTOP_WAIT_PORT', config.prestopPort], ...(config.metrics.enabled ? [['MM_METRICS', config.metrics.port] as const] : [])] as const;
  const seen = new Map<number, string>();
  for (const [name, value] of ports) {
    if (value === 0) continue;
    const other = seen.get(value);
    if (other) throw new ConfigError(name, `uses port ${value}, which ${other} already uses`);
    seen.set(value, name);
  }
  return Object.freeze(config);
}
