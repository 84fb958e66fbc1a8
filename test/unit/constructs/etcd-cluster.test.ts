import { Testing } from 'cdk8s';
import { containerOf, one } from './util';
import { EtcdCluster, EtcdConnection, ModelMesh, Runtimes } from '../../../lib';

describe('EtcdCluster', () => {
  test('three members with stable DNS names, a quorum-keeping budget and the connection Secret', () => {
    const chart = Testing.chart();
    const etcd = new EtcdCluster(chart, 'etcd');
    const objects = Testing.synth(chart);
    const sts = one(objects, 'StatefulSet', 'modelmesh-etcd');
    expect(sts.spec.replicas).toBe(3);
    expect(sts.spec.serviceName).toBe('modelmesh-etcd-headless');
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests).toEqual({ storage: '1Gi' });
    const args: string[] = containerOf(sts, 'etcd').args;
    expect(args).toContain('--initial-cluster=' + [0, 1, 2].map((i) =>
      `modelmesh-etcd-${i}=http://modelmesh-etcd-${i}.modelmesh-etcd-headless.$(POD_NAMESPACE).svc:2380`).join(','));
    expect(args).toContain('--listen-client-urls=http://0.0.0.0:2379');
    expect(one(objects, 'Service', 'modelmesh-etcd-headless').spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(one(objects, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    const secret = one(objects, 'Secret', 'model-serving-etcd');
    expect(JSON.parse(secret.stringData.etcd_connection)).toEqual({ endpoints: 'http://modelmesh-etcd:2379', root_prefix: 'modelmesh-serving' });
    expect(etcd.binding).toEqual({ secretName: 'model-serving-etcd', clientTlsSecretName: undefined });
    expect(objects).toMatchSnapshot();
  });

  test('one member has no disruption budget; five tolerate two down', () => {
    const single = Testing.chart();
    new EtcdCluster(single, 'etcd', { replicas: 1 });
    expect(Testing.synth(single).filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
    const five = Testing.chart();
    new EtcdCluster(five, 'etcd', { replicas: 5, storageSize: '10Gi', storageClassName: 'fast' });
    const objects = Testing.synth(five);
    expect(one(objects, 'PodDisruptionBudget').spec.maxUnavailable).toBe(2);
    expect(one(objects, 'StatefulSet').spec.volumeClaimTemplates[0].spec).toMatchObject({ storageClassName: 'fast', resources: { requests: { storage: '10Gi' } } });
  });

  test('client TLS: https listener with client-certificate auth, and a connection that points at the client files', () => {
    const chart = Testing.chart();
    new EtcdCluster(chart, 'etcd', { replicas: 3, tls: { serverSecretName: 'etcd-server', clientSecretName: 'etcd-client' } });
    const objects = Testing.synth(chart);
    const etcd = containerOf(one(objects, 'StatefulSet'), 'etcd');
    expect(etcd.args).toEqual(expect.arrayContaining(['--listen-client-urls=https://0.0.0.0:2379', '--client-cert-auth=true',
      '--trusted-ca-file=/etc/etcd/tls/ca.crt']));
    expect(etcd.volumeMounts).toContainEqual({ name: 'tls', mountPath: '/etc/etcd/tls', readOnly: true });
    expect(JSON.parse(one(objects, 'Secret').stringData.etcd_connection)).toEqual({
      endpoints: 'https://modelmesh-etcd:2379',
      root_prefix: 'modelmesh-serving',
      certificate_file: '/opt/kserve/mmesh/etcd-tls/ca.crt',
      client_certificate_file: '/opt/kserve/mmesh/etcd-tls/tls.crt',
      client_key_file: '/opt/kserve/mmesh/etcd-tls/tls.key',
    });
  });

  test('the network policy admits clients only from the mesh pods when the mesh creates the cluster', () => {
    const chart = Testing.chart();
    new ModelMesh(chart, 'mesh', { etcd: EtcdConnection.cluster({ replicas: 1 }), runtimes: [Runtimes.example()] });
    const policy = one(Testing.synth(chart), 'NetworkPolicy', 'modelmesh-etcd');
    expect(policy.spec.ingress[1]).toEqual({
      from: [{ podSelector: { matchLabels: { 'modelmesh-service': 'modelmesh-serving' } } }],
      ports: [{ port: 2379, protocol: 'TCP' }],
    });
  });

  test.each([
    [{ replicas: 2 }, /test\/etcd: replicas must be odd \(1, 3, 5…\) to keep a quorum, and at most 7; got 2/],
    [{ replicas: 0 }, /replicas must be odd .*got 0/],
    [{ storageSize: 'lots' }, /test\/etcd: storageSize must be a quantity such as "1Gi"; got "lots"/],
    [{ name: 'Etcd_Main' }, /test\/etcd: name must be lowercase letters/],
  ])('rejects %j', (props, message) => {
    expect(() => new EtcdCluster(Testing.chart(), 'etcd', props)).toThrow(message);
  });
});

describe('EtcdConnection.external', () => {
  test('generates the connection Secret from endpoints', () => {
    const chart = Testing.chart();
    new ModelMesh(chart, 'mesh', {
      etcd: EtcdConnection.external({ endpoints: ['http://etcd-a:2379', 'http://etcd-b:2379'], rootPrefix: 'team-a' }),
      runtimes: [Runtimes.example()],
    });
    const objects = Testing.synth(chart);
    expect(objects.filter((o) => o.kind === 'StatefulSet')).toEqual([]);
    expect(JSON.parse(one(objects, 'Secret', 'model-serving-etcd').stringData.etcd_connection))
      .toEqual({ endpoints: 'http://etcd-a:2379,http://etcd-b:2379', root_prefix: 'team-a' });
  });

  test('uses an existing Secret (credentials stay out of the YAML)', () => {
    const chart = Testing.chart();
    const mesh = new ModelMesh(chart, 'mesh', { etcd: EtcdConnection.external({ secretName: 'my-etcd' }), runtimes: [Runtimes.example()] });
    const objects = Testing.synth(chart);
    expect(objects.filter((o) => o.kind === 'Secret' && o.metadata.name === 'model-serving-etcd')).toEqual([]);
    const volumes = one(objects, 'Deployment').spec.template.spec.volumes;
    expect(volumes).toContainEqual({ name: 'etcd-config', secret: { secretName: 'my-etcd', defaultMode: 0o440 } });
    expect(mesh.etcd.secretName).toBe('my-etcd');
  });

  test.each([
    [{ endpoints: ['http://e:2379'], secretName: 's' }, /test\/mesh: etcd gives both endpoints and secretName/],
    [{ endpoints: [] }, /test\/mesh: etcd.endpoints must list at least one etcd client URL/],
    [{ endpoints: ['etcd:2379'] }, /etcd.endpoints must be http:\/\/ or https:\/\/ URLs; got "etcd:2379"/],
    [{ endpoints: ['http://e:2379'], tls: { clientSecretName: 'c' } }, /etcd.endpoints must use https:\/\/ when tls is set/],
  ])('rejects %j', (props, message) => {
    expect(() => new ModelMesh(Testing.chart(), 'mesh', { etcd: EtcdConnection.external(props) })).toThrow(message);
  });
});
