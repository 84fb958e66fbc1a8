import { planKubePlay } from './kube-play';
import type { Container, K8sObject, Service, Workload } from '../e2e/k8s-types';
import { synthesizeMinimal } from '../e2e/minimal-example';

/** The podman tier's rendering, checked without podman: only the listed adaptations, nothing the constructs chose. */

const SUBNET = '10.89.77';
const objects = synthesizeMinimal();
const plan = planKubePlay(objects, { subnet: SUBNET, externalHosts: [{ name: 'minio', ip: `${SUBNET}.1` }] });

type Played = { kind: string; metadata: { name: string }; spec?: Record<string, unknown> };
const played = plan.objects as unknown as Played[];
const podSpecs = () => played.flatMap((o) => {
  if (o.kind === 'Pod') return [o.spec as unknown as { containers: Container[]; volumes?: Record<string, unknown>[]; hostAliases?: unknown }];
  if (o.kind === 'Deployment') return [(o.spec!.template as { spec: { containers: Container[]; volumes?: Record<string, unknown>[]; hostAliases?: unknown } }).spec];
  return [];
});
const workloads = objects.filter((o): o is Workload => o.kind === 'StatefulSet' || o.kind === 'Deployment');

test('the StatefulSet becomes its replica Pod with its claim; the Deployment stays one', () => {
  const sts = workloads.find((w) => w.kind === 'StatefulSet')!;
  const pod = played.find((o) => o.kind === 'Pod')!;
  expect(pod.metadata.name).toBe(`${sts.metadata.name}-0`);
  const claim = played.find((o) => o.kind === 'PersistentVolumeClaim')!;
  expect(claim.metadata.name).toBe(`data-${sts.metadata.name}-0`);
  expect((pod.spec!.volumes as Record<string, unknown>[])).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: claim.metadata.name } });
  expect(played.filter((o) => o.kind === 'Deployment')).toHaveLength(1);
  expect(played.map((o) => o.kind)).not.toContain('StatefulSet');
  expect(played.map((o) => o.kind)).not.toContain('Service');
  // Play order: what pods use comes before them; --ip values follow the pods' order.
  expect(played.findIndex((o) => o.kind === 'ConfigMap')).toBeLessThan(played.findIndex((o) => o.kind === 'Pod'));
  expect(plan.pods.map((p) => p.ip)).toEqual([`${SUBNET}.10`, `${SUBNET}.11`]);
});

test('every pod resolves the Service names, the StatefulSet pod name and the external host', () => {
  const etcdIp = plan.pods[0].ip;
  const servingIp = plan.pods[1].ip;
  for (const spec of podSpecs()) {
    const aliases = spec.hostAliases as { ip: string; hostnames: string[] }[];
    const ipOf = (name: string) => aliases.find((a) => a.hostnames.includes(name))?.ip;
    expect(ipOf('modelmesh-etcd')).toBe(etcdIp);
    expect(ipOf('modelmesh-etcd.modelmesh.svc.cluster.local')).toBe(etcdIp);
    expect(ipOf('modelmesh-etcd-0.modelmesh-etcd-headless.modelmesh.svc')).toBe(etcdIp);
    expect(ipOf('modelmesh-serving')).toBe(servingIp);
    expect(ipOf('minio')).toBe(`${SUBNET}.1`);
  }
  expect(plan.serviceAddress('modelmesh-serving', 'grpc')).toEqual({ host: servingIp, port: 8033 });
});

test('downward API values and $(VAR) are rendered as the kubelet renders them; Secret volumes become ConfigMaps', () => {
  for (const spec of podSpecs()) {
    for (const c of spec.containers) {
      for (const arg of [...c.command ?? [], ...c.args ?? []]) expect(arg).not.toMatch(/\$\(/);
      for (const e of c.env ?? []) {
        const field = e.valueFrom?.fieldRef?.fieldPath;
        if (field) expect(field).toBe('metadata.name');
      }
    }
    for (const v of spec.volumes ?? []) {
      expect(v).not.toHaveProperty('secret');
      expect(v).not.toHaveProperty('projected');
    }
  }
  const mm = podSpecs()[1].containers.find((c) => c.name === 'mm')!;
  expect(mm.env?.find((e) => e.name === 'WKUBE_POD_IPADDR')?.value).toBe(plan.pods[1].ip);
  const etcdConfig = played.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-etcd-config')) as unknown as { data: Record<string, string> };
  expect(JSON.parse(etcdConfig.data.etcd_connection)).toEqual({ endpoints: 'http://modelmesh-etcd:2379', root_prefix: 'modelmesh-serving' });
});

test('nothing the constructs chose changes: images, commands, env names, ports, probes, mounts, security, resources', () => {
  const chosen = (c: Container) => ({
    name: c.name,
    image: c.image,
    command: c.command?.length,
    args: c.args?.length,
    env: c.env?.map((e) => e.name),
    ports: c.ports,
    readinessProbe: c.readinessProbe,
    livenessProbe: c.livenessProbe,
    volumeMounts: c.volumeMounts,
    securityContext: c.securityContext,
    resources: c.resources,
  });
  const before = workloads.flatMap((w) => w.spec.template.spec.containers.map(chosen));
  const after = podSpecs().flatMap((s) => s.containers.map(chosen));
  expect(after).toEqual(before);
  const envValues = (list: readonly Container[]) => list.flatMap((c) => (c.env ?? []).filter((e) => e.value !== undefined && !e.value.includes('$(')));
  const synthesizedValues = envValues(workloads.flatMap((w) => w.spec.template.spec.containers));
  const playedValues = envValues(podSpecs().flatMap((s) => s.containers));
  for (const value of synthesizedValues) expect(playedValues).toContainEqual(value);
});

test('a Service whose port differs from its target port is refused (host aliases cannot remap ports)', () => {
  const remapped = objects.map((o) => (o.kind === 'Service' && o.metadata.name === 'modelmesh-serving'
    ? { ...o, spec: { ...(o as Service).spec, ports: [{ name: 'grpc', port: 80, targetPort: 'grpc' }] } } as K8sObject
    : o));
  expect(() => planKubePlay(remapped, { subnet: SUBNET })).toThrow('Service modelmesh-serving port 80 targets 8033: host aliases cannot remap ports');
});
