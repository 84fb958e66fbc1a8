import { ServiceError, status } from '@grpc/grpc-js';
import type { Container, K8sObject, Workload } from './k8s-types';
import { INPUT, SAMPLE, declaredModel, modelInfer, synthesizeMinimal as synthesize } from './minimal-example';
import { LocalCluster } from './pod-runner';
import { ContainerNames, Mounts, ObjectNames } from '../../lib/contract';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { sampleReference } from '../../scripts/make-sample-onnx';
import { inferenceClient } from '../harness/inference';
import { startS3rver } from '../harness/storage-servers';
import { StopWaiting, waitFor, waitForHttp } from '../harness/wait';

/**
 * The e2e tier: the synthesized `minimal` example, run as local processes exactly as its pod specs say (see
 * pod-runner.ts for the two adaptations), serves a real ONNX inference through the `modelmesh-serving` Service's
 * grpc port for the model the example declares. The third adaptation is the storage: the example pulls from a MinIO
 * Service (`http://minio:9000`) it does not declare, so s3rver stands in for it, holding the sample model at the
 * declared bucket and path.
 */

interface FlowTimeouts {
  readonly readyMs: number;
  readonly inferMs: number;
}

/**
 * Starts the objects' etcd StatefulSet, then the runtime Deployment (nothing restarts here, so the order a rollout
 * would converge to), waits for their readiness probes and asks the declared model through the Service's grpc port.
 * Returns the output tensor; throws with the containers' logs on any failure. Stops everything it started.
 */
async function serveThroughService(objects: readonly K8sObject[], timeouts: FlowTimeouts,
  onFailure?: (cluster: LocalCluster) => Promise<void>): Promise<number[]> {
  const { model, entry } = declaredModel(objects);
  if (entry.type !== 's3') throw new Error(`the example's storage type "${entry.type}" has no stand-in here`);
  const s3 = await startS3rver();
  let cluster: LocalCluster | undefined;
  let client: GRPCInferenceServiceClient | undefined;
  try {
    await s3.createBucket(entry.bucket);
    await s3.put(entry.bucket, model.path, SAMPLE);
    const declared = new URL(entry.endpoint_url);
    cluster = await LocalCluster.create(objects, {
      externalServices: [{ name: declared.hostname, port: Number(declared.port || 80), address: new URL(s3.endpoint).host }],
    });
    const workloads = objects.filter((o): o is Workload => o.kind === 'StatefulSet' || o.kind === 'Deployment');
    for (const kind of ['StatefulSet', 'Deployment'] as const) {
      for (const w of workloads.filter((x) => x.kind === kind)) {
        await cluster.startWorkload(kind, w.metadata.name, { readyTimeoutMs: timeouts.readyMs });
      }
    }
    const address = cluster.serviceAddress(ObjectNames.SERVICE, 'grpc');
    client = inferenceClient(address.port);
    const answer = await waitFor(`an inference of ${model.name} through Service ${ObjectNames.SERVICE}`, async () => {
      try {
        return await modelInfer(client!, model.name, timeouts.inferMs);
      } catch (err) {
        // Only "not there yet" is worth waiting for: the leader reconciles the catalog into the vmodel every few seconds.
        if ((err as ServiceError).code === status.NOT_FOUND) throw err;
        throw new StopWaiting(`inference failed: ${(err as Error).message}`);
      }
    }, { timeoutMs: timeouts.inferMs, intervalMs: 250 });
    return answer.outputs[0].contents!.fp32Contents;
  } catch (err) {
    if (cluster && onFailure) await onFailure(cluster);
    const detail = cluster ? `\n\nrewrites:\n${cluster.rewrites.join('\n')}\nunresolved: ${cluster.unresolved.join('; ') || 'none'}\n\n${cluster.logs()}` : '';
    throw new Error(`${(err as Error).message}${detail}`);
  } finally {
    client?.close();
    await cluster?.stop();
    await s3.stop();
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A deep copy of the objects, with the runtime Deployment's `mm` container changed by `edit`. */
function withMeshContainer(objects: readonly K8sObject[], edit: (container: Mutable<Container>) => void): K8sObject[] {
  const copy = JSON.parse(JSON.stringify(objects)) as K8sObject[];
  const mm = meshContainer(copy);
  edit(mm as Mutable<Container>);
  return copy;
}

function runtimeDeployment(objects: readonly K8sObject[]): Workload {
  const deployments = objects.filter((o): o is Workload => o.kind === 'Deployment');
  if (deployments.length !== 1) throw new Error(`expected one Deployment, found ${deployments.length}`);
  return deployments[0];
}

function meshContainer(objects: readonly K8sObject[]): Container {
  const mm = runtimeDeployment(objects).spec.template.spec.containers.find((c) => c.name === ContainerNames.MESH);
  if (!mm) throw new Error('the runtime Deployment has no mm container');
  return mm;
}

test('the synthesized minimal example serves its declared model through the Service port', async () => {
  const output = await serveThroughService(synthesize(), { readyMs: 60_000, inferMs: 60_000 });
  const expected = sampleReference(INPUT);
  expect(expected).toEqual([2.25, 13, 4.5]);
  expect(output).toHaveLength(expected.length);
  output.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
}, 120_000);

describe('a manifest that drifts from what the runtime reads fails this tier', () => {
  test('an env var name the runtime does not read: MM_SVC_GRPC_PORT renamed MM_SVC_GRPC_PORTX', async () => {
    const objects = withMeshContainer(synthesize(), (mm) => {
      mm.env = mm.env?.map((e) => (e.name === 'MM_SVC_GRPC_PORT' ? { ...e, name: 'MM_SVC_GRPC_PORTX' } : e));
    });
    expect(meshContainer(objects).env?.some((e) => e.name === 'MM_SVC_GRPC_PORTX')).toBe(true);
    // The mesh starts and is ready, but its front door is on its default port, not behind the Service's grpc port
    // (or, if something on this machine holds that default port, the mesh cannot start at all).
    await expect(serveThroughService(objects, { readyMs: 60_000, inferMs: 10_000 }))
      .rejects.toThrow(/inference failed: 14 UNAVAILABLE|\/mm is not running/);
  }, 90_000);

  test('a path the runtime reads that no mount provides: the etcd secret mounted elsewhere than KV_STORE says', async () => {
    const objects = withMeshContainer(synthesize(), (mm) => {
      mm.volumeMounts = mm.volumeMounts?.map((m) => (m.mountPath === Mounts.ETCD_DIR ? { ...m, mountPath: `${m.mountPath}-moved` } : m));
    });
    expect(meshContainer(objects).volumeMounts?.some((m) => m.mountPath === `${Mounts.ETCD_DIR}-moved`)).toBe(true);
    await expect(serveThroughService(objects, { readyMs: 60_000, inferMs: 10_000 })).rejects.toThrow(/\/mm is not running/);
  }, 90_000);

  test('a readiness probe on a port the runtime does not serve', async () => {
    let meshWasServing = false;
    const objects = withMeshContainer(synthesize(), (mm) => {
      const httpGet = mm.readinessProbe?.httpGet;
      if (typeof httpGet?.port !== 'number') throw new Error('the mm readiness probe has no numeric httpGet port');
      mm.readinessProbe = { ...mm.readinessProbe, httpGet: { ...httpGet, port: httpGet.port + 1_000 } };
    });
    await expect(serveThroughService(objects, { readyMs: 8_000, inferMs: 10_000 }, async (cluster) => {
      // Proof that only the probe is wrong: the mesh answers its probe path on the port its own env names, and the
      // declared probe still fails once it does.
      const mm = meshContainer(objects);
      const envPort = Number(mm.env?.find((e) => e.name === 'MM_PROBE_PORT')?.value);
      const pod = cluster.podsOf('Deployment', runtimeDeployment(objects).metadata.name)[0];
      await waitForHttp(`http://127.0.0.1:${pod.localPort(envPort)}${mm.readinessProbe?.httpGet?.path}`, 200, { timeoutMs: 60_000 });
      await expect(cluster.waitReady(pod, 2_000)).rejects.toThrow(/mm ready/);
      meshWasServing = true;
    })).rejects.toThrow(/timed out after \d+ ms waiting for \S+\/mm ready/);
    expect(meshWasServing).toBe(true);
  }, 90_000);
});
