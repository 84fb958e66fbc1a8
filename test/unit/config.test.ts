import { ConfigError, loadConfig, parseMetrics } from '../../runtime/src/config';

const base = { MM_SERVICE_NAME: 'modelmesh-serving', KV_STORE: 'embedded' };
const load = (env: Record<string, string>) => loadConfig({ ...base, ...env }, '1.2.3', () => 'host', 42);

describe('loadConfig', () => {
  test('defaults follow the command-line contract', () => {
    const config = load({});
    expect(config).toMatchObject({
      serviceName: 'modelmesh-serving',
      instanceId: 'host-42',
      advertiseAddress: '127.0.0.1',
      grpcPort: 8033,
      restPort: 8008,
      probePort: 8089,
      prestopPort: 8090,
      kvPrefix: 'mm',
      runtimeSpi: { kind: 'port', port: 8085 },
      runtimeData: { kind: 'port', port: 8085 },
      metrics: { enabled: true, port: 2112, scheme: 'http', perModelMetrics: false },
      labels: [],
      heapGrowthPercent: 50,
      loadClaimDelayMs: 10,
      version: '1.2.3',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  test('instance id comes from MM_INSTANCE_ID, else the last 12 characters of the pod name', () => {
    expect(load({ WKUBE_POD_NAME: 'modelmesh-serving-onnx-5d8f7c9b6-x2kqz' }).instanceId).toBe('f7c9b6-x2kqz');
    expect(load({ MM_INSTANCE_ID: 'mesh-1', WKUBE_POD_NAME: 'pod' }).instanceId).toBe('mesh-1');
  });

  test('the data endpoint defaults to the SPI endpoint, sockets included', () => {
    const config = load({ INTERNAL_GRPC_SOCKET_PATH: '/tmp/spi.sock' });
    expect(config.runtimeData).toEqual({ kind: 'socket', path: '/tmp/spi.sock' });
    expect(load({ INTERNAL_GRPC_PORT: '9000', INTERNAL_SERVING_GRPC_PORT: '9001' }).runtimeData).toEqual({ kind: 'port', port: 9001 });
  });

  test.each([
    [{ MM_SERVICE_NAME: '' }, 'MM_SERVICE_NAME is required'],
    [{ KV_STORE: 'zookeeper:x' }, 'KV_STORE must be "etcd:<path to etcd_connection JSON>"'],
    [{ MM_SVC_GRPC_PORT: '80a' }, 'MM_SVC_GRPC_PORT must be a port number, got "80a"'],
    [{ MM_PROBE_PORT: '70000' }, 'MM_PROBE_PORT must be a port number between 1 and 65535, got 70000'],
    [{ INTERNAL_GRPC_PORT: '1', INTERNAL_GRPC_SOCKET_PATH: '/s' }, 'INTERNAL_GRPC_SOCKET_PATH and INTERNAL_GRPC_PORT are mutually exclusive'],
    [{ MM_KVSTORE_PREFIX: 'a/b' }, "MM_KVSTORE_PREFIX must not contain '/'"],
    [{ MM_REST_PORT: '8033' }, 'MM_REST_PORT uses port 8033, which MM_SVC_GRPC_PORT already uses'],
    [{ MM_LOG_LEVEL: 'loud' }, 'MM_LOG_LEVEL must be one of trace, debug, info, warn, error, silent, got "loud"'],
    [{ MM_TLS_PRIVATE_KEY_PATH: '/k' }, 'MM_TLS_KEY_CERT_PATH must be set when MM_TLS_PRIVATE_KEY_PATH is'],
    [{ MM_TLS_CLIENT_AUTH: 'require' }, 'MM_TLS_CLIENT_AUTH needs MM_TLS_KEY_CERT_PATH and MM_TLS_PRIVATE_KEY_PATH'],
    [{ MM_INSTANCE_ID: 'bad id' }, 'MM_INSTANCE_ID must be letters'],
    [{ MM_METRICS: 'prometheus:scheme=https' }, 'MM_METRICS scheme=https serves the front door\'s certificate'],
    [{ MM_FAILFAST_UPGRADE_ENABLED: 'yes' }, 'MM_FAILFAST_UPGRADE_ENABLED must be true or false, got "yes"'],
    [{ ROOT_MODEL_DIR: '/m' }, 'ROOT_MODEL_DIR only applies with STORAGE_CONFIG_DIR'],
    [{ MM_HEAP_GROWTH_PERCENT: '-5' }, 'MM_HEAP_GROWTH_PERCENT must be an integer between 0 and 1000, got -5'],
    [{ MM_LOAD_CLAIM_DELAY_MS: '1.5' }, 'MM_LOAD_CLAIM_DELAY_MS must be an integer, got "1.5"'],
    [{ MM_LOAD_CLAIM_DELAY_MS: '60001' }, 'MM_LOAD_CLAIM_DELAY_MS must be an integer between 0 and 60000, got 60001'],
  ])('%j fails naming the variable', (env, message) => {
    expect(() => load(env as Record<string, string>)).toThrow(ConfigError);
    expect(() => load(env as Record<string, string>)).toThrow(message);
  });

  test('STORAGE_CONFIG_DIR turns the built-in puller on, with upstream\'s folders by default', () => {
    expect(load({}).puller).toBeUndefined();
    expect(load({ STORAGE_CONFIG_DIR: '/storage-config' }).puller).toEqual({
      storageConfigDir: '/storage-config', rootModelDir: '/models', pvcMountsDir: '/pvc_mounts',
    });
    expect(load({ STORAGE_CONFIG_DIR: '/sc', ROOT_MODEL_DIR: '/data/models', MM_PVC_MOUNTS_DIR: '/pvcs' }).puller).toEqual({
      storageConfigDir: '/sc', rootModelDir: '/data/models', pvcMountsDir: '/pvcs',
    });
  });

  test('the start-up fail-fast window is upstream\'s 3 minutes, settable, and off with MM_FAILFAST_UPGRADE_ENABLED=false', () => {
    expect(load({}).failFastClearanceMs).toBe(180_000);
    expect(load({ BOOTSTRAP_CLEARANCE_PERIOD_MS: '60000' }).failFastClearanceMs).toBe(60_000);
    expect(load({ MM_FAILFAST_UPGRADE_ENABLED: 'FALSE' }).failFastClearanceMs).toBe(0);
  });

  test('MM_HEAP_GROWTH_PERCENT bounds old-generation growth; 0 leaves V8 its own policy', () => {
    expect(load({ MM_HEAP_GROWTH_PERCENT: '0' }).heapGrowthPercent).toBe(0);
    expect(load({ MM_HEAP_GROWTH_PERCENT: '100' }).heapGrowthPercent).toBe(100);
  });

  test('MM_LOAD_CLAIM_DELAY_MS sets when a just-in-time load is claimed; 0 claims at once', () => {
    expect(load({ MM_LOAD_CLAIM_DELAY_MS: '0' }).loadClaimDelayMs).toBe(0);
    expect(load({ MM_LOAD_CLAIM_DELAY_MS: '250' }).loadClaimDelayMs).toBe(250);
  });

  test('REST can be turned off with port 0', () => {
    expect(load({ MM_REST_PORT: '0' }).restPort).toBe(0);
  });
});

describe('parseMetrics', () => {
  test('accepts upstream forms', () => {
    expect(parseMetrics('disabled').enabled).toBe(false);
    expect(parseMetrics('prometheus:port=9100;scheme=https;per_model_metrics=true')).toEqual({ enabled: true, port: 9100, scheme: 'https', perModelMetrics: true });
    expect(parseMetrics('prometheus')).toEqual({ enabled: true, port: 2112, scheme: 'http', perModelMetrics: false });
  });

  test('rejects unknown parameters', () => {
    expect(() => parseMetrics('prometheus:colour=red')).toThrow('MM_METRICS has an unknown or malformed parameter "colour=red"');
    expect(() => parseMetrics('statsd:port=8126')).toThrow('MM_METRICS must be "disabled" or "prometheus');
  });
});
