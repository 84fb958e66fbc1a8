import { Duration, Testing } from 'cdk8s';
import { allProblems } from './manifests';
import { containerOf, envOf, Json, namespacedChart, one } from './util';
import { Certificate, CertificateProps, EtcdCluster, EtcdClusterTls, EtcdConnection, MeshTls, ModelMesh, Runtimes } from '../../../lib';

const CA = { name: 'modelmesh-ca', kind: 'ClusterIssuer' } as const;

function certificates(objects: Json[]): Record<string, Json> {
  return Object.fromEntries(objects.filter((o) => o.kind === 'Certificate').map((o) => [o.metadata.name, o]));
}

describe('etcd certificates from cert-manager', () => {
  test('server and client Certificates write the Secrets the members and the mesh mount', () => {
    const chart = namespacedChart('ml');
    const mesh = new ModelMesh(chart, 'mesh', { etcd: EtcdConnection.cluster({ replicas: 3, tls: { issuer: CA } }), runtimes: [Runtimes.onnx()] });
    const objects = Testing.synth(chart);
    const certs = certificates(objects);
    expect(Object.keys(certs).sort()).toEqual(['modelmesh-etcd-client-tls', 'modelmesh-etcd-server-tls']);

    expect(certs['modelmesh-etcd-server-tls']).toEqual({
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: {
        name: 'modelmesh-etcd-server-tls',
        namespace: 'ml',
        labels: { 'app.kubernetes.io/name': 'etcd', 'app.kubernetes.io/instance': 'modelmesh-etcd', 'app.kubernetes.io/part-of': 'modelmesh' },
      },
      spec: {
        secretName: 'modelmesh-etcd-server-tls',
        issuerRef: { name: 'modelmesh-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
        dnsNames: [
          'modelmesh-etcd',
          'modelmesh-etcd.ml',
          'modelmesh-etcd.ml.svc',
          'modelmesh-etcd.ml.svc.cluster.local',
          '*.modelmesh-etcd-headless.ml.svc',
          '*.modelmesh-etcd-headless.ml.svc.cluster.local',
          'localhost',
        ],
        ipAddresses: ['127.0.0.1'],
        usages: ['digital signature', 'server auth', 'client auth'],
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      },
    });
    expect(certs['modelmesh-etcd-client-tls'].spec).toEqual({
      secretName: 'modelmesh-etcd-client-tls',
      issuerRef: { name: 'modelmesh-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
      commonName: 'modelmesh-serving',
      usages: ['digital signature', 'client auth'],
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
    });

    const sts = one(objects, 'StatefulSet', 'modelmesh-etcd');
    expect(sts.spec.template.spec.volumes).toEqual([{ name: 'tls', secret: { secretName: 'modelmesh-etcd-server-tls', defaultMode: 0o440 } }]);
    expect(containerOf(sts, 'etcd').args).toEqual(expect.arrayContaining(['--listen-client-urls=https://0.0.0.0:2379',
      '--cert-file=/etc/etcd/tls/tls.crt', '--key-file=/etc/etcd/tls/tls.key', '--trusted-ca-file=/etc/etcd/tls/ca.crt', '--client-cert-auth=true']));
    const pod = one(objects, 'Deployment').spec.template.spec;
    expect(pod.volumes).toContainEqual({ name: 'etcd-tls', secret: { secretName: 'modelmesh-etcd-client-tls', defaultMode: 0o440 } });
    expect(containerOf(one(objects, 'Deployment'), 'mm').volumeMounts).toContainEqual({ name: 'etcd-tls', mountPath: '/opt/kserve/mmesh/etcd-tls', readOnly: true });
    expect(JSON.parse(one(objects, 'Secret', 'model-serving-etcd').stringData.etcd_connection)).toMatchObject({
      endpoints: 'https://modelmesh-etcd:2379',
      certificate_file: '/opt/kserve/mmesh/etcd-tls/ca.crt',
      client_certificate_file: '/opt/kserve/mmesh/etcd-tls/tls.crt',
    });
    expect(mesh.etcd).toEqual({ secretName: 'model-serving-etcd', clientTlsSecretName: 'modelmesh-etcd-client-tls' });
    expect(mesh.etcdCluster?.serverCertificate?.secretName).toBe('modelmesh-etcd-server-tls');
    expect(allProblems(objects)).toEqual([]);
  });

  test('the client certificate is named after the mesh; an explicit common name, a name and an Issuer are kept', () => {
    const chart = namespacedChart('team-a');
    new ModelMesh(chart, 'mesh', {
      serviceName: 'fraud-mesh',
      etcd: EtcdConnection.cluster({ replicas: 1, name: 'fraud-etcd', tls: { issuer: { name: 'team-ca' } } }),
      runtimes: [Runtimes.onnx()],
    });
    const certs = certificates(Testing.synth(chart));
    expect(certs['fraud-etcd-client-tls'].spec.commonName).toBe('fraud-mesh');
    expect(certs['fraud-etcd-server-tls'].spec.issuerRef).toEqual({ name: 'team-ca', kind: 'Issuer', group: 'cert-manager.io' });
    expect(certs['fraud-etcd-server-tls'].spec.dnsNames).toContain('*.fraud-etcd-headless.team-a.svc');

    const standalone = namespacedChart();
    new EtcdCluster(standalone, 'etcd', { tls: { issuer: CA, clientCommonName: 'etcd-user' } });
    expect(certificates(Testing.synth(standalone))['modelmesh-etcd-client-tls'].spec.commonName).toBe('etcd-user');
  });

  test('lifetime, renewal and key options reach both Certificates; an RSA key adds key encipherment', () => {
    const chart = namespacedChart();
    new EtcdCluster(chart, 'etcd', {
      replicas: 1,
      tls: {
        issuer: { name: 'vault', kind: 'ClusterIssuer', group: 'vault.example.com' },
        certificate: { duration: Duration.days(30), renewBefore: Duration.minutes(90), privateKey: { algorithm: 'RSA', size: 4096 } },
      },
    });
    for (const cert of Object.values(certificates(Testing.synth(chart)))) {
      expect(cert.spec).toMatchObject({
        issuerRef: { name: 'vault', kind: 'ClusterIssuer', group: 'vault.example.com' },
        duration: '720h',
        renewBefore: '90m',
        privateKey: { algorithm: 'RSA', size: 4096, rotationPolicy: 'Always' },
      });
      expect(cert.spec.usages.slice(0, 2)).toEqual(['digital signature', 'key encipherment']);
    }
  });

  test('Secrets you provide still work, and no Certificate is added', () => {
    const chart = namespacedChart();
    const etcd = new EtcdCluster(chart, 'etcd', { tls: { serverSecretName: 'etcd-server', clientSecretName: 'etcd-client' } });
    const objects = Testing.synth(chart);
    expect(objects.filter((o) => o.kind === 'Certificate')).toEqual([]);
    expect(one(objects, 'StatefulSet').spec.template.spec.volumes[0].secret.secretName).toBe('etcd-server');
    expect(etcd.binding.clientTlsSecretName).toBe('etcd-client');
    expect(etcd.serverCertificate).toBeUndefined();
  });

  test.each<[string, EtcdClusterTls, RegExp]>([
    ['an empty issuer name', { issuer: { name: '' } }, /^test\/etcd: tls\.issuer\.name must name a cert-manager Issuer or ClusterIssuer; got ""$/],
    ['an issuer name that is no object name', { issuer: { name: 'My CA' } }, /test\/etcd: tls\.issuer\.name must be lowercase letters/],
    ['an unknown issuer kind', { issuer: { name: 'ca', kind: 'CA' as any } }, /test\/etcd: tls\.issuer\.kind must be "Issuer" or "ClusterIssuer"; got "CA"/],
    ['both an issuer and secret names', { issuer: CA, serverSecretName: 's', clientSecretName: 'c' },
      /test\/etcd: tls gives both issuer and serverSecretName and clientSecretName: with issuer, cert-manager writes the Secrets "modelmesh-etcd-server-tls" and "modelmesh-etcd-client-tls"; give one or the other/],
    ['an issuer and one secret name', { issuer: CA, clientSecretName: 'c' }, /test\/etcd: tls gives both issuer and clientSecretName/],
    ['neither an issuer nor secret names', {}, /test\/etcd: tls needs either issuer \(cert-manager issues the certificates\) or both serverSecretName and clientSecretName/],
    ['only the server secret', { serverSecretName: 's' }, /test\/etcd: tls needs either issuer/],
    ['certificate options without an issuer', { serverSecretName: 's', clientSecretName: 'c', certificate: { duration: Duration.days(1) } },
      /test\/etcd: tls\.certificate only applies with tls\.issuer/],
    ['a client common name without an issuer', { serverSecretName: 's', clientSecretName: 'c', clientCommonName: 'x' }, /test\/etcd: tls\.clientCommonName only applies with tls\.issuer/],
    ['a client common name over 64 characters', { issuer: CA, clientCommonName: 'x'.repeat(65) }, /test\/etcd: tls\.clientCommonName must have 1 to 64 characters/],
    ['a lifetime under an hour', { issuer: CA, certificate: { duration: Duration.minutes(30) } },
      /test\/etcd: tls\.certificate\.duration must be at least one hour \(cert-manager's minimum\); got 30m/],
    ['renewal under five minutes', { issuer: CA, certificate: { renewBefore: Duration.seconds(90) } }, /tls\.certificate\.renewBefore must be at least five minutes .*got 90s/],
    ['renewal not before expiry', { issuer: CA, certificate: { duration: Duration.hours(2), renewBefore: Duration.hours(2) } },
      /test\/etcd: tls\.certificate\.renewBefore must be shorter than duration \(2h\); got 2h/],
    ['a key size the algorithm lacks', { issuer: CA, certificate: { privateKey: { algorithm: 'RSA', size: 1024 } } },
      /test\/etcd: tls\.certificate\.privateKey\.size must be 2048, 4096, 8192 for RSA; got 1024/],
  ])('EtcdCluster rejects %s', (_name, tls, message) => {
    expect(() => new EtcdCluster(namespacedChart(), 'etcd', { tls })).toThrow(message);
  });

  test('an issuer needs the chart\'s namespace', () => {
    expect(() => new EtcdCluster(Testing.chart(), 'etcd', { tls: { issuer: CA } }))
      .toThrow(/^test\/etcd: tls\.issuer needs the chart's namespace to write the certificate's DNS names \(<service>\.<namespace>\.svc\): set namespace in the Chart's props$/);
    expect(() => new ModelMesh(Testing.chart(), 'mesh', { etcd: EtcdConnection.cluster({ tls: { issuer: CA } }) }))
      .toThrow(/^test\/mesh\/etcd: tls\.issuer needs the chart's namespace/);
  });
});

describe('front-door certificate from cert-manager', () => {
  test('a Certificate for the Service names writes the Secret the mesh pods mount', () => {
    const chart = namespacedChart('ml');
    const mesh = new ModelMesh(chart, 'mesh', { etcd: EtcdConnection.cluster({ replicas: 1 }), tls: { issuer: CA }, runtimes: [Runtimes.onnx()] });
    const objects = Testing.synth(chart);
    const cert = one(objects, 'Certificate', 'modelmesh-serving-tls');
    expect(cert.metadata.namespace).toBe('ml');
    expect(cert.spec).toEqual({
      secretName: 'modelmesh-serving-tls',
      issuerRef: { name: 'modelmesh-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
      dnsNames: ['modelmesh-serving', 'modelmesh-serving.ml', 'modelmesh-serving.ml.svc', 'modelmesh-serving.ml.svc.cluster.local', 'localhost'],
      ipAddresses: ['127.0.0.1'],
      usages: ['digital signature', 'server auth'],
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
    });
    const deployment = one(objects, 'Deployment');
    expect(deployment.spec.template.spec.volumes).toContainEqual({ name: 'tls-certs', secret: { secretName: 'modelmesh-serving-tls', defaultMode: 0o440 } });
    expect(envOf(containerOf(deployment, 'mm'))).toMatchObject({
      MM_TLS_KEY_CERT_PATH: '/opt/kserve/mmesh/tls/tls.crt',
      MM_TLS_PRIVATE_KEY_PATH: '/opt/kserve/mmesh/tls/tls.key',
    });
    expect(mesh.tls?.secretName).toBe('modelmesh-serving-tls');
    expect(mesh.tlsCertificate?.secretName).toBe('modelmesh-serving-tls');
    expect(objects.filter((o) => o.kind === 'Certificate').map((o) => o.metadata.name)).toEqual(['modelmesh-serving-tls']);
    expect(allProblems(objects)).toEqual([]);
  });

  test('with client authentication the certificate also serves as the client certificate of peer calls', () => {
    const chart = namespacedChart();
    new ModelMesh(chart, 'mesh', {
      serviceName: 'mm',
      etcd: EtcdConnection.cluster({ replicas: 1 }),
      tls: { issuer: CA, clientAuth: 'require', certificate: { duration: Duration.days(90) } },
      runtimes: [Runtimes.onnx()],
    });
    const objects = Testing.synth(chart);
    expect(one(objects, 'Certificate', 'mm-tls').spec).toMatchObject({ usages: ['digital signature', 'server auth', 'client auth'], duration: '2160h' });
    expect(envOf(containerOf(one(objects, 'Deployment'), 'mm')).MM_TLS_CLIENT_AUTH).toBe('require');
  });

  test.each<[string, MeshTls, RegExp]>([
    ['an empty issuer name', { issuer: { name: '' } }, /^test\/mesh: tls\.issuer\.name must name a cert-manager Issuer or ClusterIssuer; got ""$/],
    ['both an issuer and a secret name', { issuer: CA, secretName: 'mesh-tls' },
      /^test\/mesh: tls gives both issuer and secretName: with issuer, cert-manager writes the Secret "modelmesh-serving-tls"; give one or the other$/],
    ['neither an issuer nor a secret name', { clientAuth: 'require' }, /^test\/mesh: tls needs either issuer \(cert-manager issues the certificate\) or secretName \(a Secret you provide\)$/],
    ['certificate options without an issuer', { secretName: 'mesh-tls', certificate: {} }, /^test\/mesh: tls\.certificate only applies with tls\.issuer/],
    ['a lifetime under an hour', { issuer: CA, certificate: { duration: Duration.minutes(59) } }, /^test\/mesh: tls\.certificate\.duration must be at least one hour/],
  ])('ModelMesh rejects %s', (_name, tls, message) => {
    expect(() => new ModelMesh(namespacedChart(), 'mesh', { etcd: EtcdConnection.cluster({ replicas: 1 }), tls })).toThrow(message);
  });

  test('an issuer needs the chart\'s namespace', () => {
    expect(() => new ModelMesh(Testing.chart(), 'mesh', { etcd: EtcdConnection.cluster({ replicas: 1 }), tls: { issuer: CA } }))
      .toThrow(/^test\/mesh: tls\.issuer needs the chart's namespace/);
  });
});

describe('Certificate', () => {
  test('snapshot of a server certificate', () => {
    const chart = namespacedChart();
    new Certificate(chart, 'cert', { secretName: 'web-tls', issuer: { name: 'ca' }, purposes: ['server auth'], dnsNames: ['web'], commonName: 'web' });
    expect(Testing.synth(chart)).toMatchSnapshot();
  });

  test.each<[string, Partial<CertificateProps>, RegExp]>([
    ['an empty issuer name', { issuer: { name: '' } }, /^test\/cert: issuer\.name must name a cert-manager Issuer or ClusterIssuer; got ""$/],
    ['no purpose', { purposes: [] }, /^test\/cert: purposes must name at least one of "server auth" and "client auth"$/],
    ['a bad secret name', { secretName: 'Web_TLS' }, /^test\/cert: secretName must be lowercase letters/],
    ['a renewal longer than the lifetime', { duration: Duration.hours(24), renewBefore: Duration.days(2) }, /^test\/cert: renewBefore must be shorter than duration \(24h\); got 48h$/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => new Certificate(namespacedChart(), 'cert', { secretName: 'web-tls', issuer: { name: 'ca' }, purposes: ['server auth'], ...props }))
      .toThrow(message);
  });
});
