import { Testing } from 'cdk8s';
import { meshChart, one } from './util';
import { ModelDeclaration, parseStorageUri, Runtimes, Storage } from '../../../lib';

describe('Model', () => {
  test('catalog entries: storageUri parsed as upstream does, sorted by name, in the catalog ConfigMap', () => {
    const { chart, mesh } = meshChart({ runtimes: [Runtimes.onnx(), Runtimes.mlserver()], storage: { default: Storage.s3({ bucket: 'b' }) } });
    mesh.addModel('zeta', { format: { name: 'onnx', version: '1' }, path: 'z.onnx', storageKey: 'default', owner: 'team-a' });
    mesh.addModel('alpha', { format: { name: 'sklearn' }, storageUri: 's3://bucket/fraud/model.joblib', schemaPath: 'schema.json' });
    const catalog = JSON.parse(one(Testing.synth(chart), 'ConfigMap', 'modelmesh-catalog').data['models.json']);
    expect(catalog).toEqual({
      version: 1,
      models: [
        {
          name: 'alpha',
          modelType: 'mt:sklearn',
          modelFormat: { name: 'sklearn' },
          path: 'fraud/model.joblib',
          storageParams: { bucket: 'bucket', type: 's3' },
          storageUri: 's3://bucket/fraud/model.joblib',
          schemaPath: 'schema.json',
        },
        { name: 'zeta', modelType: 'mt:onnx:1', modelFormat: { name: 'onnx', version: '1' }, path: 'z.onnx', storageKey: 'default', owner: 'team-a' },
      ],
    });
  });

  test.each([
    ['pvc://claim/dir/m.onnx', { path: 'dir/m.onnx', params: { type: 'pvc', name: 'claim' } }],
    ['gs://bucket/m', { path: 'm', params: { type: 'gcs', bucket: 'bucket' } }],
    ['https://acct.blob.core.windows.net/models/a/b.onnx', { path: 'a/b.onnx', params: { type: 'azure', account_name: 'acct', container: 'models' } }],
    ['https://host.example.com/repo/m.onnx?sig=1', { path: 'repo/m.onnx', params: { type: 'http', url: 'https://host.example.com?sig=1' } }],
    ['ftp://host/m', 'has the unsupported scheme "ftp" (use s3, gs, pvc, http or https)'],
  ])('parseStorageUri(%s)', (uri, expected) => {
    expect(parseStorageUri(uri)).toEqual(expected);
  });

  test('an InferenceService in ModelMesh mode, kept out of the catalog', () => {
    const { chart, mesh } = meshChart({ runtimes: [Runtimes.triton()] });
    mesh.addModel('resnet', { format: { name: 'onnx', version: '1' }, runtime: 'triton-2.x', storageUri: 's3://m/resnet', declaration: ModelDeclaration.INFERENCE_SERVICE });
    const objects = Testing.synth(chart);
    const isvc = one(objects, 'InferenceService', 'resnet');
    expect(isvc.metadata.annotations).toEqual({ 'serving.kserve.io/deploymentMode': 'ModelMesh' });
    expect(isvc.spec).toEqual({ predictor: { model: { modelFormat: { name: 'onnx', version: '1' }, runtime: 'triton-2.x', storageUri: 's3://m/resnet' } } });
    expect(JSON.parse(one(objects, 'ConfigMap', 'modelmesh-catalog').data['models.json']).models).toEqual([]);
    expect(isvc).toMatchSnapshot();
  });

  test.each([
    [{ format: { name: 'onnx' } }, /test\/mesh\/model-m: storageUri or path must be given, and not both/],
    [{ format: { name: 'onnx' }, path: 'a', storageUri: 's3://b/a' }, /storageUri or path must be given, and not both/],
    [{ format: { name: 'onnx' }, storageUri: 'ftp://h/m' }, /storageUri has the unsupported scheme "ftp"/],
    [{ format: { name: 'onnx' }, path: 'a', name: 'bad name' }, /name must be letters, digits, '.', '_' or '-'; got "bad name"/],
    [{ format: { name: 'onnx' }, path: 'a', name: 'Upper', declaration: ModelDeclaration.INFERENCE_SERVICE }, /name must be a lowercase DNS name/],
    [{ format: { name: '' }, path: 'a' }, /format.name must name the model format/],
  ])('rejects %j at once', (options, message) => {
    expect(() => meshChart({ runtimes: [Runtimes.onnx()] }).mesh.addModel('m', options as any)).toThrow(message);
  });

  test.each([
    [{ format: { name: 'sklearn' }, path: 'a' }, /test\/mesh\/model-m: format "sklearn" is served by no runtime of the mesh that auto-selects it/],
    [{ format: { name: 'onnx' }, path: 'a', runtime: 'triton-2.x' }, /runtime "triton-2.x" is not a runtime of the mesh \(runtimes: onnx\)/],
    [{ format: { name: 'onnx' }, path: 'a', storageKey: 'nope' }, /storageKey "nope" is not an entry of the mesh's storage config/],
  ])('rejects %j at synth, when the mesh is complete', (options, message) => {
    const { chart, mesh } = meshChart({ runtimes: [Runtimes.onnx()] });
    mesh.addModel('m', options);
    expect(() => Testing.synth(chart)).toThrow(message);
  });

  test('a runtime added after the model still satisfies it', () => {
    const { chart, mesh } = meshChart({ runtimes: [Runtimes.onnx()] });
    mesh.addModel('m', { format: { name: 'sklearn' }, path: 'a' });
    mesh.addRuntime(Runtimes.mlserver());
    expect(() => Testing.synth(chart)).not.toThrow();
  });

  test('rejects two models with one name', () => {
    const { mesh } = meshChart({ runtimes: [Runtimes.onnx()] });
    mesh.addModel('m', { format: { name: 'onnx' }, path: 'a' });
    expect(() => mesh.addModel('other', { name: 'm', format: { name: 'onnx' }, path: 'b' })).toThrow(/test\/mesh: models has two models named "m"/);
  });
});
