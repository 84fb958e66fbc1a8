import { readFileSync } from 'node:fs';
import { Testing } from 'cdk8s';
import type { K8sObject, Workload } from './k8s-types';
import { LocalCluster, LocalPod } from './pod-runner';
import { MinimalChart } from '../../constructs-examples/minimal';
import { ContainerNames, MeshEnv, Ports, RuntimeEnv } from '../../lib/contract';

/**
 * The pod runner's rendering of the minimal example, without starting anything: what each container would be given,
 * and the clear errors for what cannot run here. minimal.test.ts starts the processes.
 */

const synthesize = (): K8sObject[] => Testing.synth(new MinimalChart(Testing.app(), 'minimal')) as K8sObject[];
const clusters: LocalCluster[] = [];

async function cluster(objects: readonly K8sObject[] = synthesize()): Promise<LocalCluster> {
  const c = await LocalCluster.create(objects, { externalServices: [{ name: 'minio', port: 9000, address: '127.0.0.1:1' }] });
  clusters.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.stop()));
});

const onlyPod = (c: LocalCluster, kind: Workload['kind']): LocalPod => {
  const pods = c.pods.filter((p) => p.workload.kind === kind);
  expect(pods).toHaveLength(1);
  return pods[0];
};
const containerEnv = (c: LocalCluster, pod: LocalPod, name: string) =>
  c.localCommand(pod, pod.spec.containers.find((x) => x.name === name)!).env;

test('every port number of a pod moves to its own loopback port, the same one in every container of the pod', async () => {
  const c = await cluster();
  const runtime = onlyPod(c, 'Deployment');
  const mm = containerEnv(c, runtime, ContainerNames.MESH);
  const onnx = containerEnv(c, runtime, 'onnx');
  expect(mm[MeshEnv.GRPC_PORT]).toBe(String(runtime.localPort(Ports.GRPC)));
  expect(mm[MeshEnv.GRPC_PORT]).not.toBe(String(Ports.GRPC));
  // The model server's SPI port is pod-internal: the mesh looks where the model server listens.
  expect(mm[MeshEnv.RUNTIME_SPI_PORT]).toBe(onnx[RuntimeEnv.PORT]);
  expect(mm[MeshEnv.METRICS]).toBe(`prometheus:port=${runtime.localPort('prometheus')};scheme=http`);
  const locals = c.pods.flatMap((p) => [...p.ports.values()].map((a) => a.local));
  expect(new Set(locals).size).toBe(locals.length);
  for (const [declared, { local }] of c.pods.flatMap((p) => [...p.ports])) expect(local).not.toBe(declared);
});

test('a Service name in a mounted Secret becomes the loopback address of the pod behind it', async () => {
  const c = await cluster();
  const etcd = onlyPod(c, 'StatefulSet');
  const runtime = onlyPod(c, 'Deployment');
  const kvStore = containerEnv(c, runtime, ContainerNames.MESH)[MeshEnv.KV_STORE];
  expect(kvStore).toMatch(/^etcd:\//);
  const connection = JSON.parse(readFileSync(kvStore.slice('etcd:'.length), 'utf8')) as { endpoints: string };
  expect(connection.endpoints).toBe(`http://127.0.0.1:${etcd.localPort('client')}`);
  expect(c.unresolved).toEqual([]);
});

test('valueFrom fields and resources render as the kubelet renders them', async () => {
  const c = await cluster();
  const runtime = onlyPod(c, 'Deployment');
  const mm = containerEnv(c, runtime, ContainerNames.MESH);
  expect(mm[MeshEnv.POD_NAME]).toBe(runtime.name);
  expect(mm[MeshEnv.POD_IP]).toBe('127.0.0.1');
  expect(containerEnv(c, runtime, 'onnx')[RuntimeEnv.CONTAINER_MEM_REQ_BYTES]).toBe(String(2 ** 30));
});

test('an image without a local stand-in fails with its name', async () => {
  const objects = synthesize();
  const sts = objects.find((o) => o.kind === 'StatefulSet') as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } };
  sts.spec.template.spec.containers[0].image = 'registry.example/etcd:9.9';
  const c = await cluster(objects);
  await expect(c.startWorkload('StatefulSet', (sts as unknown as K8sObject).metadata.name))
    .rejects.toThrow(/image registry\.example\/etcd:9\.9 has no local stand-in/);
});

test('a Secret a pod mounts but the chart does not contain fails with its name', async () => {
  const objects = synthesize().filter((o) => !(o.kind === 'Secret' && o.metadata.name === 'storage-config'));
  await expect(cluster(objects)).rejects.toThrow(/Secret modelmesh\/storage-config is not among the synthesized objects/);
});
