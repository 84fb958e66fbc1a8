import type { ConfigMap, Container, K8sObject, Secret, Service, Volume, Workload } from '../e2e/k8s-types';
import { expandVariables, objectData } from '../e2e/pod-runner';

/**
 * Turns synthesized objects into what Podman 4.3's `podman kube play` can run, by doing what the Kubernetes control
 * plane and kubelet would do where Podman does not. Every rewrite is listed in `PodmanPlan.adaptations`; nothing the
 * constructs chose (images, commands, env names, ports, probes, mounts, security context) is changed:
 *
 * 1. StatefulSets: Podman ignores them. Each replica becomes a Pod named `<set>-<i>` from the pod template, and each
 *    volume claim template a PersistentVolumeClaim `<claim>-<set>-<i>` (a Podman volume) mounted under the claim's name.
 * 2. Services: Podman has none. Every pod gets `hostAliases` giving the Service names (`svc`, `svc.ns`,
 *    `svc.ns.svc`, `svc.ns.svc.cluster.local`, and `pod.svc…` for the pods of a StatefulSet's headless Service) the
 *    static address of the pod behind them, which works because every Service port equals its target port (the
 *    plan refuses objects where they differ).
 * 3. Downward API: Podman 4.3 only knows `metadata.name`, labels and annotations; `metadata.namespace`,
 *    `status.podIP` and `status.hostIP` become the values the kubelet would give (the host is the network's gateway).
 * 4. `$(VAR)` in command, args and env values: expanded as the kubelet expands them (Podman passes them literally).
 * 5. Secret volumes and projected Secret/ConfigMap volumes: Podman 4.3 mounts only ConfigMap, emptyDir, hostPath and
 *    PVC volumes, so each becomes a ConfigMap volume of a ConfigMap holding the same files (`<pod>-<volume>`).
 *    The Secrets are still played, for `secretKeyRef` env.
 *
 * Services, NetworkPolicies, PodDisruptionBudgets, ServiceAccounts and custom resources are not played.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A name the pods must resolve that no Service provides (e.g. an external storage server on the host). */
export interface ExternalHost {
  readonly name: string;
  readonly ip: string;
}

export interface PlanOptions {
  /** The first three octets of the /24 network the pods are played on, e.g. `10.89.77`; `.1` is the gateway. */
  readonly subnet: string;
  readonly externalHosts?: readonly ExternalHost[];
}

/** One pod `podman kube play` creates, in play order (the order `--ip` values are taken in). */
export interface PlannedPod {
  readonly name: string;
  readonly ip: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly containers: readonly Container[];
}

export interface PodmanPlan {
  /** The objects to play, in order. */
  readonly objects: readonly JsonObject[];
  readonly pods: readonly PlannedPod[];
  /** Every rewrite made, one line each. */
  readonly adaptations: readonly string[];
  /** The gateway address: the host as the pods see it. */
  readonly gateway: string;
  /** Service name (`svc.ns`) and port name/number → the address that answers it. */
  serviceAddress(service: string, port: string | number, namespace?: string): { host: string; port: number };
}

const PLAYED_AS_IS = new Set(['ConfigMap', 'Secret']);
const NOT_PLAYED = new Set(['Service', 'NetworkPolicy', 'PodDisruptionBudget', 'ServiceAccount']);
const FIRST_POD_HOST = 10;

const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const selects = (selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Renders the objects for `podman kube play`; throws when they need something this adaptation cannot give. */
export function planKubePlay(synthesized: readonly K8sObject[], options: PlanOptions): PodmanPlan {
  const gateway = `${options.subnet}.1`;
  const adaptations: string[] = [];
  const objects: JsonObject[] = [];
  const pods: (PlannedPod & { spec: JsonObject; workload: Workload })[] = [];
  const byKindName = (kind: string, name: string, namespace: string) =>
    synthesized.find((o) => o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? 'default') === namespace);

  // Pods first, StatefulSets before Deployments (a rollout converges to etcd being there before the runtime).
  const workloads = synthesized.filter((o): o is Workload => o.kind === 'StatefulSet' || o.kind === 'Deployment')
    .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'StatefulSet' ? -1 : 1));
  for (const w of workloads) {
    const namespace = w.metadata.namespace ?? 'default';
    const replicas = w.spec.replicas ?? 1;
    if (w.kind === 'Deployment' && replicas !== 1) {
      throw new Error(`Deployment ${w.metadata.name} has ${replicas} replicas; podman kube play 4.3 plays one`);
    }
    for (let i = 0; i < replicas; i++) {
      // Podman names a Deployment's pod `<deployment>-pod-0`.
      const name = w.kind === 'StatefulSet' ? `${w.metadata.name}-${i}` : `${w.metadata.name}-pod-0`;
      const ip = `${options.subnet}.${FIRST_POD_HOST + pods.length}`;
      pods.push({
        name,
        ip,
        namespace,
        labels: w.spec.template.metadata?.labels ?? {},
        containers: w.spec.template.spec.containers,
        spec: copy(w.spec.template.spec) as unknown as JsonObject,
        workload: w,
      });
    }
  }

  // Adaptation 2: the names Services would give, as host aliases.
  const aliases = new Map<string, string>();
  const services = synthesized.filter((o): o is Service => o.kind === 'Service');
  for (const svc of services) {
    const namespace = svc.metadata.namespace ?? 'default';
    const backing = pods.filter((p) => p.namespace === namespace && selects(svc.spec.selector, p.labels));
    if (backing.length === 0) continue;
    for (const port of svc.spec.ports ?? []) {
      const target = containerPort(backing[0], port.targetPort ?? port.port);
      if (target !== port.port) {
        throw new Error(`Service ${svc.metadata.name} port ${port.port} targets ${target}: host aliases cannot remap ports`);
      }
    }
    const names = (host: string) => [host, `${host}.${namespace}`, `${host}.${namespace}.svc`, `${host}.${namespace}.svc.cluster.local`];
    for (const name of names(svc.metadata.name)) aliases.set(name, backing[0].ip);
    const headless = svc.spec.clusterIP === 'None';
    for (const pod of backing) {
      if (headless && pod.workload.kind === 'StatefulSet' && pod.workload.spec.serviceName === svc.metadata.name) {
        for (const name of names(`${pod.name}.${svc.metadata.name}`)) aliases.set(name, pod.ip);
      }
    }
    adaptations.push(`Service ${namespace}/${svc.metadata.name} → host alias for ${backing.map((p) => `${p.name} (${p.ip})`).join(', ')}`);
  }
  for (const host of options.externalHosts ?? []) {
    aliases.set(host.name, host.ip);
    adaptations.push(`external host ${host.name} → ${host.ip}`);
  }
  const byIp = new Map<string, string[]>();
  for (const [name, ip] of aliases) byIp.set(ip, [...byIp.get(ip) ?? [], name]);
  const hostAliases: Json = [...byIp].map(([ip, hostnames]) => ({ ip, hostnames: hostnames.sort() }));

  const volumeMaps: JsonObject[] = [];
  for (const pod of pods) {
    const w = pod.workload;
    const spec = pod.spec;
    spec.hostAliases = hostAliases;

    // Adaptation 3 and 4: downward API values Podman lacks, then `$(VAR)` expansion.
    const downward: Record<string, string> = {
      'metadata.name': pod.name, 'metadata.namespace': pod.namespace, 'status.podIP': pod.ip, 'status.hostIP': gateway,
    };
    for (const container of spec.containers as JsonObject[]) {
      const defined = new Map<string, string>();
      for (const env of (container.env ?? []) as JsonObject[]) {
        const fieldPath = ((env.valueFrom as JsonObject | undefined)?.fieldRef as JsonObject | undefined)?.fieldPath as string | undefined;
        if (fieldPath && fieldPath !== 'metadata.name' && downward[fieldPath] !== undefined) {
          delete env.valueFrom;
          env.value = downward[fieldPath];
          adaptations.push(`${pod.name}/${container.name as string}: env ${env.name as string} from ${fieldPath} = ${env.value}`);
        } else if (typeof env.value === 'string') {
          const expanded = expandVariables(env.value, defined);
          if (expanded !== env.value) adaptations.push(`${pod.name}/${container.name as string}: env ${env.name as string} expanded to ${expanded}`);
          env.value = expanded;
        }
        const known = typeof env.value === 'string' ? env.value : fieldPath === 'metadata.name' ? pod.name : undefined;
        if (known !== undefined) defined.set(env.name as string, known);
      }
      for (const field of ['command', 'args'] as const) {
        const list = container[field] as string[] | undefined;
        if (!list) continue;
        container[field] = list.map((arg) => {
          const expanded = expandVariables(arg, defined);
          if (expanded !== arg) adaptations.push(`${pod.name}/${container.name as string}: ${field} ${arg} → ${expanded}`);
          return expanded;
        });
      }
    }

    // Adaptation 5: Secret and projected volumes as ConfigMap volumes.
    const volumes = ((spec.volumes ?? []) as unknown as Volume[]).map((volume): Json => {
      const sources = volume.secret ? [{ secret: { ...volume.secret, name: volume.secret.secretName } }] : volume.projected?.sources;
      if (!sources) return volume as unknown as Json;
      const files: Record<string, string> = {};
      for (const source of sources) {
        const ref = source.secret ?? source.configMap;
        const kind = source.secret ? 'Secret' : 'ConfigMap';
        if (!ref) throw new Error(`${pod.name}: projected volume ${volume.name} has a source other than a Secret or ConfigMap`);
        const object = byKindName(kind, ref.name, pod.namespace) as Secret | ConfigMap | undefined;
        if (!object) throw new Error(`${pod.name}: volume ${volume.name} names ${kind} ${ref.name}, which is not synthesized`);
        const all = objectData(object);
        for (const item of ref.items ?? [...all.keys()].map((key) => ({ key, path: key }))) {
          const value = all.get(item.key);
          if (value === undefined) throw new Error(`${pod.name}: volume ${volume.name}: ${kind} ${ref.name} has no key ${item.key}`);
          files[item.path] = value.toString('utf8');
        }
      }
      const mapName = `${pod.name}-${volume.name}`;
      volumeMaps.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: mapName, namespace: pod.namespace }, data: files });
      adaptations.push(`${pod.name}: ${volume.secret ? 'Secret' : 'projected'} volume ${volume.name} → ConfigMap ${mapName}`);
      const defaultMode = volume.secret?.defaultMode ?? volume.projected?.defaultMode;
      return { name: volume.name, configMap: { name: mapName, ...(defaultMode === undefined ? {} : { defaultMode }) } };
    });

    // Adaptation 1: StatefulSet replicas as Pods with their claims.
    if (w.kind === 'StatefulSet') {
      for (const template of (copy(w.spec.volumeClaimTemplates ?? []) as unknown as JsonObject[])) {
        const claim = (template.metadata as JsonObject).name as string;
        const claimName = `${claim}-${pod.name}`;
        objects.push({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claimName, namespace: pod.namespace }, spec: template.spec });
        volumes.push({ name: claim, persistentVolumeClaim: { claimName } });
        adaptations.push(`StatefulSet ${w.metadata.name} claim template ${claim} → PersistentVolumeClaim ${claimName}`);
      }
    }
    spec.volumes = volumes;
  }

  // What the pods use goes before them: the objects, the claims (already in), the ConfigMaps made from volumes.
  for (const o of synthesized) {
    if (PLAYED_AS_IS.has(o.kind)) {objects.push(copy(o) as unknown as JsonObject);} else if (!NOT_PLAYED.has(o.kind) && o.kind !== 'StatefulSet' && o.kind !== 'Deployment' && o.apiVersion.startsWith('v1')) {
      throw new Error(`${o.kind} ${o.metadata.name}: the podman tier does not know this core kind`);
    }
  }
  objects.push(...volumeMaps);
  for (const pod of pods) {
    const w = pod.workload;
    if (w.kind === 'StatefulSet') {
      objects.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: pod.name, namespace: pod.namespace, labels: { ...pod.labels } },
        spec: pod.spec,
      });
      adaptations.push(`StatefulSet ${w.metadata.name} → Pod ${pod.name}`);
    } else {
      const deployment = copy(w) as unknown as JsonObject;
      ((deployment.spec as JsonObject).template as JsonObject).spec = pod.spec;
      objects.push(deployment);
    }
  }

  const planned: readonly PlannedPod[] = pods.map(({ name, ip, namespace, labels, containers }) => ({ name, ip, namespace, labels, containers }));
  return {
    objects,
    pods: planned,
    adaptations,
    gateway,
    serviceAddress(service, port, namespace) {
      const svc = services.find((s) => s.metadata.name === service && (!namespace || s.metadata.namespace === namespace));
      if (!svc) throw new Error(`no Service ${service}`);
      const servicePort = svc.spec.ports?.find((p) => p.name === port || p.port === port);
      if (!servicePort) throw new Error(`Service ${service} has no port ${port}`);
      const backing = pods.find((p) => p.namespace === (svc.metadata.namespace ?? 'default') && selects(svc.spec.selector, p.labels));
      if (!backing) throw new Error(`Service ${service} selects no pod`);
      return { host: backing.ip, port: servicePort.port };
    },
  };
}

/** A Service target port (number or container port name) as the number the pod serves. */
function containerPort(pod: PlannedPod, target: number | string): number {
  if (typeof target === 'number') return target;
  for (const container of pod.containers) {
    const found = container.ports?.find((p) => p.name === target);
    if (found) return found.containerPort;
  }
  throw new Error(`pod ${pod.name} declares no port named ${target}`);
}
