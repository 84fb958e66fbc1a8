import { Testing } from 'cdk8s';
import { containerOf, one } from './util';
import { MinimalChart } from '../../../constructs-examples/minimal';
import { loadConfig } from '../../../runtime/src/config';

/** The mesh container's env, as synthesized, is read by the runtime's own config loader without error and as meant. */
describe('mesh container env and the runtime config', () => {
  test('the runtime accepts the synthesized env and sees the intended ports, store and files', () => {
    const deployment = one(Testing.synth(new MinimalChart(Testing.app(), 'p')), 'Deployment');
    const fieldValues: Record<string, string> = {
      'metadata.name': 'modelmesh-serving-onnx-5d8f7c9b6-x2k4q',
      'status.podIP': '10.1.2.3',
      'status.hostIP': '192.0.2.10',
    };
    const env = Object.fromEntries(containerOf(deployment, 'mm').env.map((e: any) =>
      [e.name, e.value ?? fieldValues[e.valueFrom.fieldRef.fieldPath]]));
    const config = loadConfig(env, 'test');
    expect(config).toMatchObject({
      serviceName: 'modelmesh-serving',
      instanceId: '5d8f7c9b6-x2k4q'.slice(-12),
      advertiseAddress: '10.1.2.3',
      grpcPort: 8033,
      restPort: 8008,
      probePort: 8089,
      prestopPort: 8090,
      kvStore: 'etcd:/opt/kserve/mmesh/etcd/etcd_connection',
      kvPrefix: 'mm',
      runtimeSpi: { kind: 'port', port: 8085 },
      runtimeData: { kind: 'port', port: 8085 },
      labels: ['mt:onnx', 'mt:onnx:1', 'pv:grpc-v2', 'pv:v2', 'rt:onnx'],
      typeConstraintsPath: '/etc/watson/mmesh/config/type_constraints',
      dataplaneConfigPath: '/etc/watson/mmesh/config/dataplane_api_config',
      catalogPath: '/etc/modelmesh/catalog/models.json',
      defaultVModelOwner: 'ksp',
      shutdownTimeoutMs: 90000,
      maxMessageSize: 16777216,
      puller: { storageConfigDir: '/storage-config', rootModelDir: '/models', pvcMountsDir: '/pvc_mounts' },
    });
    expect(config.metrics).toMatchObject({ enabled: true, port: 2112, scheme: 'http' });
  });
});
