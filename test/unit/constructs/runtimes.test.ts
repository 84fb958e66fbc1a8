import { Images, Runtimes } from '../../../lib';

describe('Runtimes presets', () => {
  test.each([
    [Runtimes.triton(), 'triton-2.x', 'triton', 'nvcr.io/nvidia/tritonserver:23.04-py3', 'triton', 8001, 'port:8001', ['grpc-v2']],
    [Runtimes.mlserver(), 'mlserver-1.x', 'mlserver', 'seldonio/mlserver:1.3.2', 'mlserver', 8001, 'port:8001', ['grpc-v2']],
    [Runtimes.ovms(), 'ovms-1.x', 'ovms', 'openvino/model_server:2022.2', 'ovms', 8888, 'port:8001', ['grpc-v1']],
    [Runtimes.torchserve(), 'torchserve-0.x', 'torchserve', 'pytorch/torchserve:0.7.1-cpu', 'torchserve', 7071, 'port:7070', []],
  ])('%#: upstream %s', (runtime, name, container, image, serverType, managementPort, dataEndpoint, protocols) => {
    const adapter = { serverType, runtimeManagementPort: managementPort, memBufferBytes: 134217728, modelLoadingTimeoutMillis: 90000 };
    expect(runtime.name).toBe(name);
    expect(runtime.containers.map((c) => [c.name, c.image])).toEqual([[container, image]]);
    expect(runtime.builtInAdapter).toEqual(adapter);
    expect(runtime.grpcEndpoint).toBe('port:8085');
    expect(runtime.grpcDataEndpoint).toBe(dataEndpoint);
    expect(runtime.protocolVersions).toEqual(protocols);
    expect(runtime.storageHelper).toBe(false);
    expect(runtime.containers[0].resources?.requests?.memory?.value).toBe('1Gi');
  });

  test('upstream container commands and env', () => {
    expect(Runtimes.triton().containers[0].command).toEqual(['/bin/sh']);
    expect(Runtimes.triton().containers[0].args?.[1]).toMatch(/^mkdir -p \/models\/_triton_models; chmod 777 \/models\/_triton_models; exec tritonserver /);
    expect(Runtimes.mlserver().containers[0].env?.map((e) => `${e.name}=${e.value}`)).toEqual(['MLSERVER_MODELS_DIR=/models/_mlserver_models/',
      'MLSERVER_GRPC_PORT=8001', 'MLSERVER_HTTP_PORT=8002', 'MLSERVER_LOAD_MODELS_AT_STARTUP=false', 'MLSERVER_MODEL_NAME=dummy-model-fixme',
      'MLSERVER_HOST=127.0.0.1', 'MLSERVER_GRPC_MAX_MESSAGE_LENGTH=-1']);
    expect(Runtimes.ovms().containers[0].args).toContain('--config_path=/models/model_config_list.json');
    expect(Runtimes.torchserve().containers[0].env).toEqual([{ name: 'TS_CONFIG_FILE', value: '/models/_torchserve_models/mmconfig.properties' }]);
    expect(Runtimes.triton().annotations).toEqual({ maxLoadingConcurrency: '2' });
  });

  test('this project\'s runtimes run its one image with `modelmesh runtime <kind>`, overridable', () => {
    const onnx = Runtimes.onnx();
    expect(onnx.containers[0]).toMatchObject({ name: 'onnx', image: Images.MODELMESH, command: ['modelmesh', 'runtime', 'onnx'] });
    expect(onnx.supportedModelFormats).toEqual([{ name: 'onnx', version: '1', autoSelect: true }]);
    expect(onnx.storageHelper).toBe(true);
    const example = Runtimes.example({ name: 'strings', image: 'registry.local/mm:dev', storageHelper: false });
    expect(example.containers[0]).toMatchObject({ name: 'example', image: 'registry.local/mm:dev', command: ['modelmesh', 'runtime', 'example'] });
    expect(example.name).toBe('strings');
    expect(example.storageHelper).toBe(false);
    expect(Runtimes.mlserver({ image: 'my/mlserver:2', resources: { memory: '4Gi' } }).containers[0]).toMatchObject({ image: 'my/mlserver:2' });
  });
});
