import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { EtcdConnection, ModelMesh, Runtimes, Storage } from '../lib';

/**
 * The smallest useful platform: a one-member etcd, the ONNX runtime, models pulled from an S3-compatible store
 * (here a MinIO service in the same namespace whose bucket allows anonymous reads), and one declared model.
 */
export class MinimalChart extends Chart {
  public constructor(scope: Construct, id: string) {
    super(scope, id, { namespace: 'modelmesh' });
    const mesh = new ModelMesh(this, 'mesh', {
      etcd: EtcdConnection.cluster({ replicas: 1 }),
      storage: { default: Storage.s3({ bucket: 'models', endpointUrl: 'http://minio:9000' }) },
    });
    mesh.addRuntime(Runtimes.onnx(), { replicas: 1 });
    mesh.addModel('mnist', { format: { name: 'onnx' }, path: 'onnx/mnist.onnx' });
  }
}
