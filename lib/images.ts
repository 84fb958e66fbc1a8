import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The version of this package. Both packages (`cdk8s-modelmesh` and `cdk8s-modelmesh-runtime`) are released at one
 * version, set once in `.projenrc.ts`, and the runtime image is tagged with it; reading it here keeps the image the
 * constructs name in step with the release. `lib/` (sources) and `build/` (compiled) both sit directly under the
 * package root.
 */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { name?: string; version?: string };
  if (manifest.name !== 'cdk8s-modelmesh' || !manifest.version) {
    throw new Error(`cdk8s-modelmesh: ${join(__dirname, '..', 'package.json')} is not this package's manifest`);
  }
  return manifest.version;
}

/**
 * Container images the constructs use by default, pinned by tag in this one place. Every construct that runs one
 * takes an `image` prop to override it. `MODELMESH` is this project's image (`runtime/Dockerfile`),
 * `ghcr.io/cdk8s-modelmesh/modelmesh:<version of this package>`; the others are upstream's images at the versions
 * modelmesh-serving v0.12.0 uses, and `ETCD` is the etcd server of `EtcdCluster`.
 */
export const Images = {
  /**
   * This project's image (`runtime/Dockerfile`, tagged with this package's version): the mesh (`modelmesh serve`) and
   * the built-in runtimes (`modelmesh runtime onnx|example`).
   */
  MODELMESH: `ghcr.io/cdk8s-modelmesh/modelmesh:${packageVersion()}`,
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
