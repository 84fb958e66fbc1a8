import { Testing } from 'cdk8s';
import { meshChart, one } from './util';
import { Runtimes, Storage, StorageConfig } from '../../../lib';

describe('StorageConfig', () => {
  test('one JSON entry per key in upstream format; your own Secrets are projected beside them', () => {
    const chart = Testing.chart();
    const storage = new StorageConfig(chart, 'storage', {
      entries: {
        s3: Storage.s3({ bucket: 'models', endpointUrl: 'http://minio:9000', region: 'us-east-1' }),
        gcs: Storage.gcs({ bucket: 'g' }),
        azure: Storage.azure({ accountName: 'acct', container: 'models' }),
        web: Storage.http({ url: 'https://models.example.com', headers: { 'x-team': 'ml' } }),
        claim: Storage.pvc({ claimName: 'model-store' }),
        private: Storage.fromSecret('s3', { name: 'creds', key: 'aws' }),
      },
    });
    const secret = one(Testing.synth(chart), 'Secret', 'storage-config');
    expect(Object.fromEntries(Object.entries(secret.stringData).map(([k, v]) => [k, JSON.parse(v as string)]))).toEqual({
      s3: { type: 's3', access_key_id: '', secret_access_key: '', endpoint_url: 'http://minio:9000', region: 'us-east-1', bucket: 'models' },
      gcs: { type: 'gcs', bucket: 'g' },
      azure: { type: 'azure', account_name: 'acct', container: 'models' },
      web: { type: 'http', url: 'https://models.example.com', headers: { 'x-team': 'ml' } },
      claim: { type: 'pvc', name: 'model-store' },
    });
    expect(storage.claimNames).toEqual(['model-store']);
    expect(storage.volume('storage-config')).toEqual({
      name: 'storage-config',
      projected: {
        defaultMode: 0o440,
        sources: [{ secret: { name: 'storage-config' } }, { secret: { name: 'creds', items: [{ key: 'aws', path: 'private' }] } }],
      },
    });
    expect(Testing.synth(chart)).toMatchSnapshot();
  });

  test('PVC entries are mounted read-only into every runtime pod', () => {
    const { chart, mesh } = meshChart({ runtimes: [Runtimes.mlserver(), Runtimes.onnx()] });
    mesh.addStorage('shared', Storage.pvc({ claimName: 'shared-models' }));
    for (const deployment of Testing.synth(chart).filter((o) => o.kind === 'Deployment')) {
      expect(deployment.spec.template.spec.volumes).toContainEqual({ name: 'shared-models', persistentVolumeClaim: { claimName: 'shared-models', readOnly: true } });
    }
  });

  test.each([
    ['an invalid key', 'bad key', /test\/storage: entries\["bad key"\] is not a valid storage key/],
    ['a duplicate key', 'dup', /test\/storage: entries\["dup"\] is defined twice/],
  ])('rejects %s', (_case, key, message) => {
    const storage = new StorageConfig(Testing.chart(), 'storage', { entries: { dup: Storage.gcs({ bucket: 'b' }) } });
    expect(() => storage.addEntry(key, Storage.gcs({ bucket: 'c' }))).toThrow(message);
  });
});
