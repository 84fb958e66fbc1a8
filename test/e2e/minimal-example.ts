import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Metadata, ServiceError } from '@grpc/grpc-js';
import { Testing } from 'cdk8s';
import type { ConfigMap, K8sObject, Secret } from './k8s-types';
import { objectData } from './pod-runner';
import { MinimalChart } from '../../constructs-examples/minimal';
import { Catalog, Mounts, ObjectNames } from '../../lib/contract';
import { GRPCInferenceServiceClient, ModelInferRequest, ModelInferResponse } from '../../proto/gen/grpc_predict_v2';
import { SAMPLE_MODEL_PATH } from '../../scripts/make-sample-onnx';

/**
 * The `minimal` example as the tiers that run it (test/e2e as local processes, test/podman with `podman kube play`)
 * see it: its synthesized objects, the model it declares with the storage entry that model is pulled from, and the
 * KServe v2 call a client of its Service sends.
 */

/** The sample ONNX model (y = x·W + b) that stands in for the declared model's file. */
export const SAMPLE = readFileSync(resolve(__dirname, '..', '..', SAMPLE_MODEL_PATH));
export const INPUT = [1, 2, 3, 4];

export const synthesizeMinimal = (): K8sObject[] => Testing.synth(new MinimalChart(Testing.app(), 'minimal')) as K8sObject[];

export function one<T extends K8sObject>(objects: readonly K8sObject[], kind: T['kind'], name: string): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as T;
}

/** The first declared model and the storage entry it is pulled from, as the synthesized objects say. */
export function declaredModel(objects: readonly K8sObject[]) {
  const catalogMap = one<ConfigMap>(objects, 'ConfigMap', ObjectNames.CATALOG_CONFIGMAP);
  const catalog = JSON.parse(catalogMap.data?.[Mounts.CATALOG_KEY] ?? '{}') as Catalog;
  const model = catalog.models[0];
  if (!model) throw new Error('the example declares no model');
  const secret = one<Secret>(objects, 'Secret', ObjectNames.STORAGE_SECRET);
  const key = model.storageKey ?? 'default';
  const raw = objectData(secret).get(key)?.toString('utf8');
  if (!raw) throw new Error(`storage-config has no entry "${key}"`);
  const entry = { ...JSON.parse(raw) as Record<string, string>, ...model.storageParams };
  return { model, entry };
}

/** ModelInfer as a KServe client of the Service sends it: the model named in the request, no mesh headers. */
export function modelInfer(client: GRPCInferenceServiceClient, modelName: string, deadlineMs: number): Promise<ModelInferResponse> {
  const request = ModelInferRequest.fromPartial({
    modelName,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, INPUT.length], contents: { fp32Contents: INPUT } }],
  });
  return new Promise((done, fail) => {
    client.modelInfer(request, new Metadata(), { deadline: Date.now() + deadlineMs },
      (err: ServiceError | null, res) => (err ? fail(err) : done(res)));
  });
}
