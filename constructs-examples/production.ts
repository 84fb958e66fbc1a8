import { Chart, Duration } from 'cdk8s';
import { Construct } from 'constructs';
import { CertManagerIssuer, EtcdConnection, ModelDeclaration, ModelMesh, Runtimes, Storage } from '../lib';

/**
 * A production platform: a 3-member etcd with client TLS, Triton, MLServer and the ONNX runtime, S3 storage whose
 * credentials live in a Secret you manage, mesh TLS, Prometheus monitoring with a Grafana dashboard, and an autoscaled
 * ONNX runtime. cert-manager issues every certificate (etcd server, the mesh's etcd client, the front door) from the
 * `modelmesh-ca` ClusterIssuer, a CA issuer you set up once per cluster.
 */
export class ProductionChart extends Chart {
  /** The mesh, for charts that build on this one. */
  public readonly mesh: ModelMesh;

  public constructor(scope: Construct, id: string) {
    super(scope, id, { namespace: 'modelmesh' });
    const issuer: CertManagerIssuer = { name: 'modelmesh-ca', kind: 'ClusterIssuer' };
    this.mesh = new ModelMesh(this, 'mesh', {
      etcd: EtcdConnection.cluster({
        replicas: 3,
        storageSize: '8Gi',
        tls: { issuer },
      }),
      storage: {
        // The whole entry, access keys included, is kept in a Secret managed outside this chart.
        default: Storage.fromSecret('s3', { name: 'modelmesh-s3-credentials', key: 'default' }),
        public: Storage.http({ url: 'https://models.example.com/repository' }),
      },
      tls: { issuer },
      serviceMonitor: true,
      grafanaDashboard: true,
      shutdownTimeout: Duration.minutes(2),
    });
    this.mesh.addRuntime(Runtimes.triton(), { replicas: 2 });
    this.mesh.addRuntime(Runtimes.mlserver(), { replicas: 2 });
    this.mesh.addRuntime(Runtimes.onnx(), { autoscaling: { minReplicas: 2, maxReplicas: 8 } });

    this.mesh.addModel('fraud-detector', { format: { name: 'sklearn', version: '0' }, storageUri: 's3://ml-models/fraud/v3/model.joblib' });
    this.mesh.addModel('resnet50', { format: { name: 'onnx' }, runtime: 'onnx', path: 'vision/resnet50.onnx' });
    this.mesh.addModel('sentiment', {
      format: { name: 'onnx' },
      path: 'nlp/sentiment.onnx',
      storageKey: 'public',
      declaration: ModelDeclaration.INFERENCE_SERVICE,
    });
  }
}
