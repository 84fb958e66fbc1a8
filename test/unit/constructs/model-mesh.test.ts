import { Testing } from 'cdk8s';
import { meshChart, one } from './util';
import { MinimalChart } from '../../../constructs-examples/minimal';
import { ModelMesh, Runtimes } from '../../../lib';

describe('ModelMesh', () => {
  test('the namespace platform: Service, ServiceAccount, tc-config, catalog, network policy', () => {
    const { chart } = meshChart({ runtimes: [Runtimes.onnx()] });
    const objects = Testing.synth(chart);
    expect(one(objects, 'Service', 'modelmesh-serving').spec).toEqual({
      clusterIP: 'None',
      selector: { 'modelmesh-service': 'modelmesh-serving' },
      ports: [
        { name: 'grpc', port: 8033, targetPort: 'grpc', protocol: 'TCP' },
        { name: 'http', port: 8008, targetPort: 'http', protocol: 'TCP' },
        { name: 'prometheus', port: 2112, targetPort: 'prometheus', protocol: 'TCP' },
      ],
    });
    expect(one(objects, 'ServiceAccount', 'modelmesh-serving').automountServiceAccountToken).toBe(false);
    const tc = one(objects, 'ConfigMap', 'tc-config').data;
    expect(JSON.parse(tc.type_constraints)['rt:onnx']).toEqual({ required: ['rt:onnx'] });
    expect(JSON.parse(tc.dataplane_api_config).rpcConfigs['inference.GRPCInferenceService/ModelInfer']).toEqual({ idExtractionPath: [1], vModelId: true });
    const policy = one(objects, 'NetworkPolicy', 'modelmesh-serving');
    expect(policy.spec.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: { 'modelmesh-service': 'modelmesh-serving' } } }], ports: [{ port: 8033, protocol: 'TCP' }] },
      { from: [{ podSelector: {} }], ports: [{ port: 8033, protocol: 'TCP' }, { port: 8008, protocol: 'TCP' }] },
      { ports: [{ port: 2112, protocol: 'TCP' }] },
    ]);
  });

  test('monitoring: ServiceMonitor and Grafana dashboard; REST and metrics can be turned off', () => {
    const { chart } = meshChart({ runtimes: [Runtimes.onnx()], serviceMonitor: true, grafanaDashboard: true, headless: false });
    const objects = Testing.synth(chart);
    expect(one(objects, 'ServiceMonitor').spec).toEqual({
      selector: { matchLabels: { 'modelmesh-service': 'modelmesh-serving' } },
      endpoints: [{ port: 'prometheus', scheme: 'http', path: '/metrics', interval: '30s' }],
    });
    const dashboard = one(objects, 'ConfigMap', 'modelmesh-serving-dashboard');
    expect(dashboard.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(dashboard.data['modelmesh.json']).panels[0].targets[0].expr).toContain('modelmesh_invoke_model_milliseconds_count{service="modelmesh-serving"}');
    expect(one(objects, 'Service', 'modelmesh-serving').spec.clusterIP).toBeUndefined();

    const quiet = meshChart({ runtimes: [Runtimes.onnx()], rest: false, metrics: false });
    const quietObjects = Testing.synth(quiet.chart);
    expect(one(quietObjects, 'Service', 'modelmesh-serving').spec.ports.map((p: any) => p.name)).toEqual(['grpc']);
    const mm = one(quietObjects, 'Deployment').spec.template.spec.containers.find((c: any) => c.name === 'mm');
    expect(mm.env).toEqual(expect.arrayContaining([{ name: 'MM_REST_PORT', value: '0' }, { name: 'MM_METRICS', value: 'disabled' }]));
  });

  test('front-door TLS mounts the certificate and sets the upstream TLS variables', () => {
    const { chart } = meshChart({ runtimes: [Runtimes.onnx()], tls: { secretName: 'mesh-tls', clientAuth: 'require' } });
    const pod = one(Testing.synth(chart), 'Deployment').spec.template.spec;
    const mm = pod.containers.find((c: any) => c.name === 'mm');
    expect(mm.env.filter((e: any) => e.name.startsWith('MM_TLS_'))).toEqual([
      { name: 'MM_TLS_KEY_CERT_PATH', value: '/opt/kserve/mmesh/tls/tls.crt' },
      { name: 'MM_TLS_PRIVATE_KEY_PATH', value: '/opt/kserve/mmesh/tls/tls.key' },
      { name: 'MM_TLS_CLIENT_AUTH', value: 'require' },
      { name: 'MM_TLS_TRUST_CERT_PATH', value: '/opt/kserve/mmesh/tls/tls.crt,/opt/kserve/mmesh/tls/ca.crt' },
    ]);
    expect(pod.volumes).toContainEqual({ name: 'tls-certs', secret: { secretName: 'mesh-tls', defaultMode: 0o440 } });
  });

  test('snapshot of the minimal example', () => {
    expect(Testing.synth(new MinimalChart(Testing.app(), 'platform'))).toMatchSnapshot();
  });

  test('a mesh without runtimes fails at synth', () => {
    const { chart } = meshChart();
    expect(() => Testing.synth(chart)).toThrow(/test\/mesh: runtimes is empty: add at least one with addRuntime\(\)/);
  });

  test.each([
    [{ metrics: false, serviceMonitor: true }, /test\/mesh: metrics is off, but serviceMonitor or grafanaDashboard needs it/],
    [{ serviceName: 'Model_Mesh' }, /test\/mesh: serviceName must be lowercase letters/],
    [{ grpcMaxMessageSize: 0 }, /test\/mesh: grpcMaxMessageSize must be a positive number of bytes; got 0/],
  ])('rejects %j', (props, message) => {
    expect(() => new ModelMesh(Testing.chart(), 'mesh', props)).toThrow(message);
  });
});
