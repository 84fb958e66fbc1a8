import { Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { containerOf, envOf, meshChart, one } from './util';
import { ContainerNames, MeshEnv, Mounts, Ports, ProbePaths, PullerPlacement, Runtimes, Storage } from '../../../lib';

const mem = (value: string) => k8s.Quantity.fromString(value);

describe('ServingRuntime', () => {
  test('ONNX runtime: model server, then the mesh container (which pulls models) last, configured from the contract', () => {
    const { chart, mesh } = meshChart({ storage: { pvc: Storage.pvc({ claimName: 'models' }) } });
    mesh.addRuntime(Runtimes.onnx());
    const objects = Testing.synth(chart);
    const deployment = one(objects, 'Deployment', 'modelmesh-serving-onnx');
    const pod = deployment.spec.template.spec;
    expect(pod.containers.map((c: any) => c.name)).toEqual(['onnx', ContainerNames.MESH]);
    expect(deployment.spec.selector.matchLabels).toEqual({ 'modelmesh-service': 'modelmesh-serving', 'name': 'modelmesh-serving-onnx' });
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: '75%', maxUnavailable: '15%' });

    const mm = containerOf(deployment, 'mm');
    expect(mm.command).toEqual(['modelmesh', 'serve']);
    expect(envOf(mm)).toEqual({
      [MeshEnv.SERVICE_NAME]: 'modelmesh-serving',
      [MeshEnv.GRPC_PORT]: '8033',
      [MeshEnv.REST_PORT]: '8008',
      [MeshEnv.PROBE_PORT]: '8089',
      [MeshEnv.PRESTOP_PORT]: '8090',
      [MeshEnv.POD_NAME]: { fieldRef: { fieldPath: 'metadata.name' } },
      [MeshEnv.POD_IP]: { fieldRef: { fieldPath: 'status.podIP' } },
      [MeshEnv.LOCATION]: { fieldRef: { fieldPath: 'status.hostIP' } },
      [MeshEnv.KV_STORE]: 'etcd:/opt/kserve/mmesh/etcd/etcd_connection',
      [MeshEnv.METRICS]: 'prometheus:port=2112;scheme=http',
      [MeshEnv.SHUTDOWN_TIMEOUT_MS]: '90000',
      [MeshEnv.RUNTIME_DATA_PORT]: '8085',
      [MeshEnv.RUNTIME_SPI_PORT]: '8085',
      [MeshEnv.GRPC_MAX_MSG_SIZE]: '16777216',
      [MeshEnv.KV_STORE_PREFIX]: 'mm',
      [MeshEnv.DEFAULT_VMODEL_OWNER]: 'ksp',
      [MeshEnv.LABELS]: 'mt:onnx,mt:onnx:1,pv:grpc-v2,pv:v2,rt:onnx',
      [MeshEnv.TYPE_CONSTRAINTS_PATH]: '/etc/watson/mmesh/config/type_constraints',
      [MeshEnv.DATAPLANE_CONFIG_PATH]: '/etc/watson/mmesh/config/dataplane_api_config',
      [MeshEnv.CATALOG_PATH]: `${Mounts.CATALOG_DIR}/${Mounts.CATALOG_KEY}`,
      [MeshEnv.STORAGE_CONFIG_DIR]: '/storage-config',
      [MeshEnv.ROOT_MODEL_DIR]: '/models',
      [MeshEnv.PVC_MOUNTS_DIR]: '/pvc_mounts',
    });
    // The mesh writes pulled models where the model server reads them.
    expect(mm.volumeMounts).toEqual(expect.arrayContaining([
      { name: 'models-dir', mountPath: '/models' },
      { name: 'models', mountPath: '/pvc_mounts/models', readOnly: true },
      { name: 'storage-config', mountPath: '/storage-config', readOnly: true },
    ]));
    expect(mm.ports).toEqual([
      { name: 'grpc', containerPort: Ports.GRPC, protocol: 'TCP' },
      { name: 'http', containerPort: Ports.REST, protocol: 'TCP' },
      { name: 'prometheus', containerPort: Ports.METRICS, protocol: 'TCP' },
    ]);
    expect(mm.readinessProbe.httpGet).toEqual({ path: ProbePaths.READY, port: Ports.PROBE });
    expect(mm.livenessProbe.httpGet).toEqual({ path: ProbePaths.LIVE, port: Ports.PROBE });
    expect(mm.lifecycle).toEqual({ preStop: { httpGet: { path: '/prestop', port: 8090 } } });

    const onnx = containerOf(deployment, 'onnx');
    expect(onnx.command).toEqual(['modelmesh', 'runtime', 'onnx']);
    expect(onnx.lifecycle).toEqual({ preStop: { httpGet: { path: '/prestop', port: 8090 } } });
    expect(onnx.volumeMounts.slice(0, 2)).toEqual([
      { name: 'models-dir', mountPath: '/models' },
      { name: 'models', mountPath: '/pvc_mounts/models', readOnly: true },
    ]);
    expect(pod.volumes.find((v: any) => v.name === 'models-dir')).toEqual({ name: 'models-dir', emptyDir: { sizeLimit: '1536Mi' } });
    expect(pod.terminationGracePeriodSeconds).toBe(100);
    expect(pod.automountServiceAccountToken).toBe(false);

    const runtime = one(objects, 'ServingRuntime', 'onnx');
    expect(runtime.spec).toMatchObject({
      multiModel: true,
      grpcEndpoint: 'port:8085',
      grpcDataEndpoint: 'port:8085',
      protocolVersions: ['grpc-v2'],
      supportedModelFormats: [{ name: 'onnx', version: '1', autoSelect: true }],
    });
    expect(one(objects, 'PodDisruptionBudget', 'modelmesh-serving-onnx').spec.maxUnavailable).toBe(1);
    expect(objects.filter((o) => o.metadata.name === 'modelmesh-serving-onnx' || o.kind === 'ServingRuntime')).toMatchSnapshot();
  });

  test('PullerPlacement.SIDECAR: upstream\'s puller between the mesh and the model server instead', () => {
    const { chart, mesh } = meshChart({ storage: { pvc: Storage.pvc({ claimName: 'models' }) } });
    mesh.addRuntime(Runtimes.onnx({ puller: PullerPlacement.SIDECAR }));
    const deployment = one(Testing.synth(chart), 'Deployment', 'modelmesh-serving-onnx');
    expect(deployment.spec.template.spec.containers.map((c: any) => c.name)).toEqual(['onnx', ContainerNames.PULLER, ContainerNames.MESH]);
    expect(envOf(containerOf(deployment, 'puller'))).toEqual({
      PORT: '8086', MODEL_SERVER_ENDPOINT: 'port:8085', ROOT_MODEL_DIR: '/models', STORAGE_CONFIG_DIR: '/storage-config', PVC_MOUNTS_DIR: '/pvc_mounts',
    });
    const mm = containerOf(deployment, 'mm');
    expect(envOf(mm)[MeshEnv.RUNTIME_SPI_PORT]).toBe('8086');
    expect(envOf(mm)[MeshEnv.STORAGE_CONFIG_DIR]).toBeUndefined();
    expect(mm.volumeMounts.map((m: any) => m.name)).not.toContain('storage-config');
  });

  test('storageHelper off: nobody pulls and nothing mounts storage-config', () => {
    const { chart, mesh } = meshChart();
    mesh.addRuntime(Runtimes.onnx({ storageHelper: false }));
    const deployment = one(Testing.synth(chart), 'Deployment', 'modelmesh-serving-onnx');
    expect(deployment.spec.template.spec.containers.map((c: any) => c.name)).toEqual(['onnx', ContainerNames.MESH]);
    expect(envOf(containerOf(deployment, 'mm'))[MeshEnv.STORAGE_CONFIG_DIR]).toBeUndefined();
    expect(deployment.spec.template.spec.volumes.map((v: any) => v.name)).not.toContain('storage-config');
  });

  test('Triton: the built-in adapter first, with upstream env, and no puller', () => {
    const { chart, mesh } = meshChart();
    mesh.addRuntime(Runtimes.triton());
    const deployment = one(Testing.synth(chart), 'Deployment');
    expect(deployment.spec.template.spec.containers.map((c: any) => c.name)).toEqual(['triton-adapter', 'triton', 'mm']);
    const adapter = containerOf(deployment, 'triton-adapter');
    expect(adapter.command).toEqual(['/opt/app/triton-adapter']);
    expect(adapter.image).toBe('kserve/modelmesh-runtime-adapter:v0.12.0');
    expect(adapter.env).toEqual([
      { name: 'ADAPTER_PORT', value: '8085' },
      { name: 'RUNTIME_PORT', value: '8001' },
      { name: 'RUNTIME_DATA_ENDPOINT', value: 'port:8001' },
      { name: 'CONTAINER_MEM_REQ_BYTES', valueFrom: { resourceFieldRef: { containerName: 'triton', resource: 'requests.memory' } } },
      { name: 'MEM_BUFFER_BYTES', value: '134217728' },
      { name: 'LOADTIME_TIMEOUT', value: '90000' },
      { name: 'USE_EMBEDDED_PULLER', value: 'true' },
      { name: 'RUNTIME_VERSION', value: '23.04-py3' },
      { name: 'LOADING_CONCURRENCY', value: '2' },
    ]);
    expect(adapter.volumeMounts).toContainEqual({ name: 'storage-config', mountPath: '/storage-config', readOnly: true });
    expect(envOf(containerOf(deployment, 'mm'))).toMatchObject({ INTERNAL_GRPC_PORT: '8085', INTERNAL_SERVING_GRPC_PORT: '8001' });
  });

  test('without the storage helper the mesh calls the runtime directly; unix endpoints share a socket volume', () => {
    const { chart, mesh } = meshChart();
    mesh.addRuntime(Runtimes.example({ storageHelper: false }));
    mesh.addRuntime(Runtimes.custom({
      name: 'sock',
      containers: [{ name: 'server', image: 'x/server:1', resources: { limits: { memory: mem('1Gi') }, requests: { memory: mem('1Gi'), cpu: mem('1') } } }],
      supportedModelFormats: [{ name: 'custom', autoSelect: true }],
      grpcEndpoint: 'unix:/var/run/mm/spi.sock',
      storageHelper: false,
    }));
    const objects = Testing.synth(chart);
    const example = one(objects, 'Deployment', 'modelmesh-serving-example');
    expect(example.spec.template.spec.containers.map((c: any) => c.name)).toEqual(['example', 'mm']);
    expect(envOf(containerOf(example, 'mm'))).toMatchObject({ INTERNAL_GRPC_PORT: '8085', INTERNAL_SERVING_GRPC_PORT: '8085' });
    expect(example.spec.template.spec.volumes.map((v: any) => v.name)).not.toContain('storage-config');
    expect(one(objects, 'ServingRuntime', 'example').spec.storageHelper).toEqual({ disabled: true });
    const sock = one(objects, 'Deployment', 'modelmesh-serving-sock');
    expect(envOf(containerOf(sock, 'mm'))).toMatchObject({ INTERNAL_GRPC_SOCKET_PATH: '/var/run/mm/spi.sock' });
    expect(containerOf(sock, 'mm').volumeMounts).toContainEqual({ name: 'domain-socket', mountPath: '/var/run/mm' });
    expect(containerOf(sock, 'server').volumeMounts).toContainEqual({ name: 'domain-socket', mountPath: '/var/run/mm' });
  });

  test('autoscaling replaces the fixed replica count with an HPA', () => {
    const { chart, mesh } = meshChart();
    mesh.addRuntime(Runtimes.onnx(), { autoscaling: { maxReplicas: 6 } });
    const objects = Testing.synth(chart);
    expect(one(objects, 'Deployment').spec.replicas).toBeUndefined();
    expect(one(objects, 'ServingRuntime').spec.replicas).toBeUndefined();
    expect(one(objects, 'HorizontalPodAutoscaler').spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'modelmesh-serving-onnx' },
      minReplicas: 2,
      maxReplicas: 6,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 75 } } }],
    });
  });

  const server = (extra: Partial<k8s.Container> = {}): k8s.Container => ({
    name: 'server', image: 'x/s:1', resources: { limits: { memory: mem('1Gi') } }, ...extra,
  });
  test.each([
    ['no model formats', { supportedModelFormats: [] }, /test\/mesh\/runtime-bad: runtime.supportedModelFormats must list at least one model format/],
    ['no containers', { containers: [] }, /runtime.containers must list at least one model-server container/],
    ['a reserved container name', { containers: [server({ name: 'mm' })] }, /runtime.containers\[0\].name "mm" is reserved/],
    ['duplicate container names', { containers: [server(), server()] }, /runtime.containers\[1\].name "server" is used twice/],
    ['no memory limit', { containers: [server({ resources: {} })] }, /runtime.containers\[0\].resources.limits.memory must be set/],
    ['a reserved port', { containers: [server({ ports: [{ containerPort: 8033 }] })] }, /runtime.containers\[0\].ports uses 8033/],
    ['a lifecycle hook', { containers: [server({ lifecycle: {} })] }, /must not set lifecycle or readinessProbe/],
    ['a malformed endpoint', { grpcEndpoint: 'localhost:8085' }, /runtime.grpcEndpoint must be "port:<number>" or "unix:<absolute path>"; got "localhost:8085"/],
    ['an adapter without its container', { builtInAdapter: { serverType: 'triton', runtimeManagementPort: 8001, memBufferBytes: 1, modelLoadingTimeoutMillis: 1 } },
      /runtime.builtInAdapter.serverType "triton" needs a runtime container of the same name/],
    ['an invalid name', { name: 'Bad_Name' }, /runtime.name must be lowercase letters/],
  ])('rejects %s', (_case, override, message) => {
    const { mesh } = meshChart();
    const definition = Runtimes.custom({ name: 'bad', containers: [server()], supportedModelFormats: [{ name: 'x', autoSelect: true }], ...override } as any);
    expect(() => mesh.addRuntime(definition)).toThrow(message);
  });

  test.each([
    [{ replicas: -1 }, /replicas must be a whole number of pods \(0 or more\); got -1/],
    [{ autoscaling: { minReplicas: 4, maxReplicas: 2 } }, /autoscaling needs 1 <= minReplicas <= maxReplicas; got 4..2/],
  ])('rejects options %j', (options, message) => {
    expect(() => meshChart().mesh.addRuntime(Runtimes.onnx(), options)).toThrow(message);
  });

  test('rejects two runtimes with one name', () => {
    const { mesh } = meshChart();
    mesh.addRuntime(Runtimes.onnx());
    expect(() => mesh.addRuntime(Runtimes.onnx())).toThrow(/test\/mesh: runtimes has two runtimes named "onnx"; runtime names must be unique in a mesh/);
  });
});
