/**
 * Container images the constructs use by default, pinned by tag in this one place. Every construct that runs one
 * takes an `image` prop to override it.
 */
export const Images = {
  /** This project's image: the mesh (`modelmesh serve`) and the built-in runtimes (`modelmesh runtime onnx|example`). */
  MODELMESH: 'ghcr.io/cdk8s-modelmesh/modelmesh:0.1.0',
  /** Upstream's runtime adapters and storage puller (`/opt/app/<server>-adapter`, `/opt/app/puller`). */
  RUNTIME_ADAPTER: 'kserve/modelmesh-runtime-adapter:v0.12.0',
  /** Model servers of upstream's built-in runtimes (modelmesh-serving v0.12.0). */
  TRITON: 'nvcr.io/nvidia/tritonserver:23.04-py3',
  MLSERVER: 'seldonio/mlserver:1.3.2',
  OVMS: 'openvino/model_server:2022.2',
  TORCHSERVE: 'pytorch/torchserve:0.7.1-cpu',
  /** etcd server for `EtcdCluster`. */
  ETCD: 'quay.io/coreos/etcd:v3.5.17',
} as const;
