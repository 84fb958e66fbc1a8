import { spawn } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, parse } from 'node:path';
import type {
  ConfigMap, Container, EnvVar, Handler, K8sObject, ObjectVolumeSource, PodSpec, Probe, Secret, Service, Volume, Workload,
} from './k8s-types';
import { Ports } from '../../lib/contract';
import { Images } from '../../lib/images';
import { modelmeshInvocation } from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ManagedProcess } from '../harness/processes';
import { StopWaiting, httpGet, waitFor } from '../harness/wait';

/**
 * Runs synthesized Deployments and StatefulSets as local processes, as close to what a kubelet does as loopback
 * allows: each container's command, args and env exactly as its pod spec says (`valueFrom` rendered from the
 * synthesized Secrets and ConfigMaps, `$(VAR)` expanded), its volumes written to temporary folders, readiness
 * judged by its declared probe, and calls made through the declared Service ports.
 *
 * Two adaptations make a machine without a cluster look like one; each is a rewrite of text, applied only where the
 * manifest itself names the thing, so anything the manifest does not name is left alone (and then fails):
 *
 * 1. Ports. Containers of one pod share a network namespace, but pods here share the machine's. Every port number
 *    of a pod — its containers' declared ports, its probe and hook ports, and the contract's pod-internal ports
 *    (`Ports` in lib/contract.ts, e.g. the model server's 8085, which no container declares) — gets its own free
 *    loopback port, and every whole-number occurrence of such a number in the pod's env values, command and args is
 *    rewritten to it. Never the same number: a port the runtime takes from a variable the manifest does not set
 *    stays at its default and is not where the Service, the probe or the other container looks.
 * 2. Names. A Service's DNS names (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) and a StatefulSet
 *    pod's (`pod.headless-svc.ns.svc…`) followed by `:port`, in env values, command, args and mounted Secret and
 *    ConfigMap files, become `127.0.0.1:<local port>` of the pod behind it (selector → pod → targetPort → that pod's
 *    local port; for a headless Service the port is the pod's own, as its DNS gives pod addresses). Names of
 *    services the chart expects but does not declare are given by the caller (`externalServices`).
 *
 * Mount paths named in env values, command and args (`/models`, `/opt/kserve/mmesh/etcd/etcd_connection`, …) are
 * rewritten to the volume's folder: the same translation a mount performs. When the test runs as root, containers
 * run as the pod's `runAsUser`/`runAsGroup` with volumes owned as the kubelet would own them (`fsGroup`), so a file
 * mode the user cannot read or a write outside the mounted folders fails here as in the pod.
 *
 * Not reproduced: restarts (the caller starts workloads in dependency order instead), liveness probes, resource
 * limits, `readOnly` mounts (only ownership applies), network policies.
 */

/** How a container's program runs here. */
export interface LocalCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  /** The image's own ENV: the pod's env overrides it, as in a container. */
  readonly env?: Readonly<Record<string, string>>;
}

/** What an image runs: its entrypoint, and the local stand-in of each program a pod may name in `command`. */
export interface ImageMapping {
  /** ENTRYPOINT (and CMD), used when the container gives no `command`. */
  readonly entrypoint: readonly string[];
  readonly programs: Readonly<Record<string, (args: readonly string[]) => LocalCommand>>;
}

const localEtcd = (args: readonly string[]): LocalCommand => ({
  command: process.env.ETCD_BIN ?? 'etcd',
  args,
  env: process.arch === 'arm64' ? { ETCD_UNSUPPORTED_ARCH: 'arm64' } : {},
});

/**
 * The images the constructs use by default and what stands in for them: this repository's `modelmesh` for the
 * project's image, Debian's `etcd` (3.4) for the etcd image. Any other image fails the run.
 */
export function defaultImages(): Record<string, ImageMapping> {
  return {
    [Images.MODELMESH]: { entrypoint: ['modelmesh'], programs: { modelmesh: (args) => modelmeshInvocation(args) } },
    [Images.ETCD]: { entrypoint: ['/usr/local/bin/etcd'], programs: { '/usr/local/bin/etcd': localEtcd, 'etcd': localEtcd } },
  };
}

/** A service the chart refers to without declaring it (e.g. the MinIO the minimal example expects). */
export interface ExternalService {
  /** Its name in the chart's namespace. */
  readonly name: string;
  readonly port: number;
  /** `host:port` that stands in for it. */
  readonly address: string;
}

export interface LocalClusterOptions {
  readonly images?: Readonly<Record<string, ImageMapping>>;
  readonly externalServices?: readonly ExternalService[];
  /** Replicas per workload name; default: the declared replicas. */
  readonly replicas?: Readonly<Record<string, number>>;
  /** Run containers as the pod's declared user and group. @default true when running as root */
  readonly runAsDeclaredUser?: boolean;
  /** Upper bound on a pod's termination grace period when stopping. @default 10 */
  readonly maxGraceSeconds?: number;
}

/** A local port and what it stands for, for error messages. */
interface PortAssignment {
  readonly local: number;
  readonly source: string;
}

interface Mount {
  readonly mountPath: string;
  readonly dir: string;
}

interface Owner {
  readonly uid?: number;
  readonly gid?: number;
  /** Group that owns the pod's volumes (fsGroup). */
  readonly volumeGid?: number;
}

const LOOPBACK = '127.0.0.1';
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Characters of pod-template-hash and generated name suffixes (Kubernetes' SafeEncodeString alphabet). */
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const safeRandom = (n: number) => Array.from({ length: n }, () => SAFE_ALPHABET[randomInt(SAFE_ALPHABET.length)]).join('');

/** Parses a Kubernetes quantity (`1Gi`, `500m`, `1e3`) into a number. */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?$/.exec(quantity.trim());
  if (!match) throw new Error(`"${quantity}" is not a Kubernetes quantity`);
  const suffix = match[3] ?? '';
  const binary = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'].indexOf(suffix);
  const decimal = ['k', 'M', 'G', 'T', 'P', 'E'].indexOf(suffix);
  let multiplier = 1;
  if (suffix === 'm') multiplier = 1e-3;
  else if (binary >= 0) multiplier = 2 ** (10 * (binary + 1));
  else if (decimal >= 0) multiplier = 10 ** (3 * (decimal + 1));
  return Number(match[1] + (match[2] ?? '')) * multiplier;
}

/** The keys of a Secret or ConfigMap as the kubelet sees them: `data` and `stringData` merged as the API server does. */
export function objectData(object: Secret | ConfigMap): Map<string, Buffer> {
  const data = new Map<string, Buffer>();
  if (object.kind === 'Secret') {
    for (const [k, v] of Object.entries(object.data ?? {})) data.set(k, Buffer.from(v, 'base64'));
    // The API server merges stringData into data on write, stringData winning.
    for (const [k, v] of Object.entries(object.stringData ?? {})) data.set(k, Buffer.from(v, 'utf8'));
  } else {
    for (const [k, v] of Object.entries(object.data ?? {})) data.set(k, Buffer.from(v, 'utf8'));
    for (const [k, v] of Object.entries(object.binaryData ?? {})) data.set(k, Buffer.from(v, 'base64'));
  }
  return data;
}

/** Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` is a literal `$`, anything else stays. */
export function expandVariables(text: string, defined: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) =>
    (name === undefined ? '$' : defined.get(name) ?? whole));
}

/** One replica of a workload, with its own ports and volumes. */
/** Whether every folder from the root down to `path` lets other users pass (the pod's user is one of them). */
function traversableByOthers(path: string): boolean {
  const { root } = parse(path);
  for (let dir = path; ; dir = dirname(dir)) {
    // The lowest mode bit is "others may search this folder".
    if (statSync(dir).mode % 2 === 0) return false;
    if (dir === root) return true;
  }
}

export class LocalPod {
  /** Started containers (init containers excluded), in pod order. */
  readonly containers = new Map<string, ManagedProcess>();
  /** Declared port number → local port. */
  readonly ports = new Map<number, PortAssignment>();
  readonly volumeDirs = new Map<string, string>();

  constructor(readonly name: string, readonly workload: Workload, readonly dir: string) {}

  get spec(): PodSpec {
    return this.workload.spec.template.spec;
  }

  get labels(): Readonly<Record<string, string>> {
    return this.workload.spec.template.metadata?.labels ?? {};
  }

  get namespace(): string {
    return this.workload.metadata.namespace ?? 'default';
  }

  /** The local port of a declared port number, or of a container port's name. */
  localPort(port: number | string): number {
    const number = typeof port === 'number' ? port : this.containerPortNamed(port);
    if (number === undefined) throw new Error(`pod ${this.name}: no container declares a port named "${port}"`);
    const assignment = this.ports.get(number);
    if (!assignment) throw new Error(`pod ${this.name}: port ${port} is not a port of this pod (declared: ${[...this.ports.keys()].join(', ')})`);
    return assignment.local;
  }

  /** The number of the container port called `name`. */
  containerPortNamed(name: string): number | undefined {
    for (const c of this.spec.containers) {
      const found = c.ports?.find((p) => p.name === name);
      if (found) return found.containerPort;
    }
    return undefined;
  }

  /** The last part of every container's output, for failure messages. */
  logs(maxChars = 6_000): string {
    return [...this.containers].map(([name, p]) => `--- ${this.name}/${name} (${p.running ? 'running' : 'exited'}):\n${p.log.slice(-maxChars)}`).join('\n');
  }
}

/** The synthesized objects of one chart, run as local processes. */
export class LocalCluster {
  /** Creates the pods' folders, assigns their ports and writes their volumes; starts nothing. */
  static async create(objects: readonly K8sObject[], options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const cluster = new LocalCluster(objects, options);
    try {
      await cluster.plan();
    } catch (err) {
      rmSync(cluster.root, { recursive: true, force: true });
      throw err;
    }
    return cluster;
  }

  readonly pods: LocalPod[] = [];
  /** Every rewrite made (where: before → after), to show what the adaptations did. */
  readonly rewrites: string[] = [];
  /** Service names followed by a port that could not be resolved to a pod; left as written. */
  readonly unresolved: string[] = [];
  readonly root: string;
  private readonly images: Readonly<Record<string, ImageMapping>>;
  private readonly asUser: boolean;
  private readonly started: LocalPod[] = [];
  private readonly usedPorts = new Set<number>();
  private hosts = new Map<string, (port: number) => string | undefined>();

  private constructor(private readonly objects: readonly K8sObject[], private readonly options: LocalClusterOptions) {
    this.images = options.images ?? defaultImages();
    // Only root can switch to the pod's user, and that user must be able to reach this checkout (a clone inside a
    // private temporary folder is not): otherwise the containers run as the current user.
    this.asUser = options.runAsDeclaredUser ?? (process.getuid?.() === 0 && traversableByOthers(join(__dirname, '..', '..')));
    this.root = mkdtempSync(join(tmpdir(), 'mm-e2e-pods-'));
    chmodSync(this.root, 0o755);
  }

  private find<T extends K8sObject>(kind: T['kind'], name: string, namespace: string): T | undefined {
    return this.objects.find((o) => o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? 'default') === namespace) as T | undefined;
  }

  private workloads(): Workload[] {
    return this.objects.filter((o): o is Workload => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  }

  private async plan(): Promise<void> {
    for (const workload of this.workloads()) {
      const replicas = this.options.replicas?.[workload.metadata.name] ?? workload.spec.replicas ?? 1;
      const hash = safeRandom(10);
      for (let i = 0; i < replicas; i++) {
        const name = workload.kind === 'StatefulSet' ? `${workload.metadata.name}-${i}` : `${workload.metadata.name}-${hash}-${safeRandom(5)}`;
        const pod = new LocalPod(name, workload, join(this.root, name));
        mkdirSync(pod.dir, { recursive: true });
        await this.assignPorts(pod);
        this.pods.push(pod);
      }
    }
    this.hosts = this.hostTable();
    for (const pod of this.pods) this.writeVolumes(pod);
  }

  /** Adaptation 1: a distinct free loopback port for every port number of the pod. */
  private async assignPorts(pod: LocalPod): Promise<void> {
    const numbers = new Map<number, string>();
    const add = (port: number | string | undefined, source: string) => {
      if (typeof port === 'number' && !numbers.has(port)) numbers.set(port, source);
    };
    const handlerPorts = (h: Handler | undefined, source: string) => {
      add(h?.httpGet?.port, source);
      add(h?.tcpSocket?.port, source);
      add(h?.grpc?.port, source);
    };
    for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
      for (const p of c.ports ?? []) add(p.containerPort, `${c.name} port ${p.name ?? p.containerPort}`);
      handlerPorts(c.readinessProbe, `${c.name} readinessProbe`);
      handlerPorts(c.livenessProbe, `${c.name} livenessProbe`);
      handlerPorts(c.startupProbe, `${c.name} startupProbe`);
      handlerPorts(c.lifecycle?.preStop, `${c.name} preStop`);
      handlerPorts(c.lifecycle?.postStart, `${c.name} postStart`);
    }
    for (const [name, port] of Object.entries(Ports)) add(port, `contract Ports.${name}`);
    for (const [port, source] of numbers) {
      let local: number;
      do local = await freePort(); while (this.usedPorts.has(local) || numbers.has(local));
      this.usedPorts.add(local);
      pod.ports.set(port, { local, source });
    }
  }

  private podsSelectedBy(selector: Readonly<Record<string, string>> | undefined, namespace: string): LocalPod[] {
    if (!selector || Object.keys(selector).length === 0) return [];
    return this.pods.filter((p) => p.namespace === namespace && Object.entries(selector).every(([k, v]) => p.labels[k] === v));
  }

  /** Adaptation 2: DNS names → a function from the port written after them to a loopback address. */
  private hostTable(): Map<string, (port: number) => string | undefined> {
    const table = new Map<string, (port: number) => string | undefined>();
    const set = (name: string, resolve: (port: number) => string | undefined) => {
      // Short names of equal Services in two namespaces would need the caller's namespace; no chart here has them.
      if (table.has(name)) throw new Error(`DNS name ${name} would stand for two things`);
      table.set(name, resolve);
    };
    const dnsNames = (host: string, namespace: string) =>
      [host, `${host}.${namespace}`, `${host}.${namespace}.svc`, `${host}.${namespace}.svc.cluster.local`];
    const at = (pod: LocalPod, containerPort: number) => (pod.ports.has(containerPort) ? `${LOOPBACK}:${pod.localPort(containerPort)}` : undefined);

    for (const svc of this.objects.filter((o): o is Service => o.kind === 'Service')) {
      const namespace = svc.metadata.namespace ?? 'default';
      const backing = this.podsSelectedBy(svc.spec.selector, namespace);
      const headless = svc.spec.clusterIP === 'None';
      const resolve = (port: number): string | undefined => {
        // The first pod stands for the Service; callers that need a given replica use its own DNS name.
        const pod = backing[0];
        if (!pod) return undefined;
        // A headless Service's DNS answers with pod addresses: the client's port is the pod's own port.
        if (headless) return at(pod, port);
        const servicePort = svc.spec.ports?.find((p) => p.port === port);
        if (!servicePort) return undefined;
        const target = servicePort.targetPort ?? servicePort.port;
        const containerPort = typeof target === 'number' ? target : pod.containerPortNamed(target);
        return containerPort === undefined ? undefined : at(pod, containerPort);
      };
      for (const name of dnsNames(svc.metadata.name, namespace)) set(name, resolve);
      // Pods of a StatefulSet governed by this Service get `<pod>.<service>` names.
      for (const pod of this.pods.filter((p) => p.workload.kind === 'StatefulSet' && p.workload.spec.serviceName === svc.metadata.name)) {
        for (const name of dnsNames(`${pod.name}.${svc.metadata.name}`, namespace)) set(name, (port) => at(pod, port));
      }
    }
    for (const ext of this.options.externalServices ?? []) {
      const namespace = this.workloads()[0]?.metadata.namespace ?? 'default';
      for (const name of dnsNames(ext.name, namespace)) set(name, (port) => (port === ext.port ? ext.address : undefined));
    }
    return table;
  }

  /**
   * Rewrites Service names (everywhere), and with a pod and mounts, the pod's port numbers and mount paths: one pass,
   * so nothing is rewritten twice.
   */
  private rewrite(text: string, where: string, pod?: LocalPod, mounts: readonly Mount[] = []): string {
    const parts: string[] = [];
    const hosts = [...this.hosts.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    if (hosts.length) parts.push(`(?<![\\w.-])(?<host>${hosts.join('|')}):(?<hostPort>\\d+)(?![\\w.])`);
    const paths = [...mounts].sort((a, b) => b.mountPath.length - a.mountPath.length).map((m) => escapeRegExp(m.mountPath));
    if (paths.length) parts.push(`(?<=^|[=:,;\\s"'])(?<path>${paths.join('|')})(?=$|[/:,;\\s"'])`);
    if (pod) parts.push('(?<![\\w.])(?<num>\\d+)(?![\\w.])');
    if (!parts.length) return text;
    const result = text.replace(new RegExp(parts.join('|'), 'g'), (whole: string, ...rest: unknown[]) => {
      const groups = rest[rest.length - 1] as Record<string, string | undefined>;
      if (groups.host !== undefined) {
        const address = this.hosts.get(groups.host)!(Number(groups.hostPort));
        if (address === undefined) this.unresolved.push(`${where}: ${whole}`);
        return address ?? whole;
      }
      if (groups.path !== undefined) return mounts.find((m) => m.mountPath === groups.path)!.dir;
      const assignment = pod?.ports.get(Number(groups.num));
      return assignment ? String(assignment.local) : whole;
    });
    if (result !== text) this.rewrites.push(`${where}: ${JSON.stringify(text)} → ${JSON.stringify(result)}`);
    return result;
  }

  private owner(pod: LocalPod, container?: Container): Owner {
    if (!this.asUser) return {};
    const podContext = pod.spec.securityContext ?? {};
    const uid = container?.securityContext?.runAsUser ?? podContext.runAsUser;
    const gid = container?.securityContext?.runAsGroup ?? podContext.runAsGroup;
    if (podContext.fsGroup !== undefined && gid !== undefined && podContext.fsGroup !== gid) {
      // node cannot give a child supplementary groups, so fsGroup ≠ runAsGroup cannot be reproduced.
      throw new Error(`pod ${pod.name}: fsGroup ${podContext.fsGroup} differs from runAsGroup ${gid}; not reproducible here`);
    }
    return { uid, gid, volumeGid: podContext.fsGroup };
  }

  private objectData(kind: 'Secret' | 'ConfigMap', name: string, namespace: string): Map<string, Buffer> | undefined {
    const object = this.find<Secret | ConfigMap>(kind, name, namespace);
    return object && objectData(object);
  }

  private writeVolumes(pod: LocalPod): void {
    const owner = this.owner(pod);
    const own = (path: string, mode: number) => {
      chmodSync(path, mode);
      if (owner.volumeGid !== undefined) chownSync(path, 0, owner.volumeGid);
    };
    const volumes = [...(pod.spec.volumes ?? [])];
    // A StatefulSet's claim templates become volumes of the same name (claim `<template>-<pod>`).
    for (const template of pod.workload.spec.volumeClaimTemplates ?? []) {
      volumes.push({ name: template.metadata.name, persistentVolumeClaim: { claimName: `${template.metadata.name}-${pod.name}` } });
    }
    for (const volume of volumes) {
      if (volume.persistentVolumeClaim) {
        const dir = this.claimDir(volume.persistentVolumeClaim.claimName);
        // The kubelet's fsGroup ownership management: group-owned, group-writable, setgid.
        own(dir, owner.volumeGid !== undefined ? 0o2775 : 0o755);
        pod.volumeDirs.set(volume.name, dir);
        continue;
      }
      const dir = join(pod.dir, 'volumes', volume.name);
      mkdirSync(dir, { recursive: true });
      pod.volumeDirs.set(volume.name, dir);
      if (volume.emptyDir) {
        // emptyDir is world-writable (and group-owned by fsGroup).
        own(dir, owner.volumeGid !== undefined ? 0o2777 : 0o777);
      } else {
        own(dir, 0o755);
        for (const file of this.volumeFiles(volume, pod.namespace)) {
          const path = join(dir, file.path);
          mkdirSync(dirname(path), { recursive: true });
          // Service names inside mounted files are the second adaptation; nothing else in them is touched.
          const text = file.content.toString('utf8');
          const rewritten = this.rewrite(text, `${pod.name} volume ${volume.name} ${file.path}`);
          writeFileSync(path, rewritten === text ? file.content : Buffer.from(rewritten, 'utf8'));
          own(path, file.mode);
        }
      }
    }
  }

  private volumeFiles(volume: Volume, namespace: string): { path: string; content: Buffer; mode: number }[] {
    const fromSource = (kind: 'Secret' | 'ConfigMap', name: string, source: ObjectVolumeSource, defaultMode: number | undefined) => {
      const data = this.objectData(kind, name, namespace);
      if (!data) {
        if (source.optional) return [];
        throw new Error(`volume ${volume.name}: ${kind} ${namespace}/${name} is not among the synthesized objects`);
      }
      const mode = source.defaultMode ?? defaultMode ?? 0o644;
      const items = source.items ?? [...data.keys()].map((key) => ({ key, path: key, mode: undefined }));
      return items.map((item) => {
        const content = data.get(item.key);
        if (!content) throw new Error(`volume ${volume.name}: ${kind} ${name} has no key "${item.key}"`);
        return { path: item.path, content, mode: item.mode ?? mode };
      });
    };
    if (volume.secret) return fromSource('Secret', volume.secret.secretName, volume.secret, undefined);
    if (volume.configMap) return fromSource('ConfigMap', volume.configMap.name, volume.configMap, undefined);
    if (volume.projected) {
      return volume.projected.sources.flatMap((s) => {
        if (s.secret) return fromSource('Secret', s.secret.name, s.secret, volume.projected!.defaultMode);
        if (s.configMap) return fromSource('ConfigMap', s.configMap.name, s.configMap, volume.projected!.defaultMode);
        throw new Error(`volume ${volume.name}: projected source ${JSON.stringify(s)} is not supported`);
      });
    }
    throw new Error(`volume ${volume.name}: type ${JSON.stringify(volume)} is not supported`);
  }

  /** The folder that stands for a PersistentVolumeClaim (shared by every pod that mounts it). */
  claimDir(claimName: string): string {
    const dir = join(this.root, 'claims', claimName);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private mounts(pod: LocalPod, container: Container): Mount[] {
    return (container.volumeMounts ?? []).map((m) => {
      const dir = pod.volumeDirs.get(m.name);
      if (!dir) throw new Error(`${pod.name}/${container.name}: volumeMount ${m.name} names no volume of the pod`);
      return { mountPath: m.mountPath.replace(/\/+$/, ''), dir: m.subPath ? join(dir, m.subPath) : dir };
    });
  }

  private fieldValue(pod: LocalPod, path: string): string {
    const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
    if (labelOrAnnotation) {
      const source = labelOrAnnotation[1] === 'labels' ? pod.labels : pod.workload.spec.template.metadata?.annotations ?? {};
      return source[labelOrAnnotation[2]] ?? '';
    }
    switch (path) {
      case 'metadata.name': return pod.name;
      case 'metadata.namespace': return pod.namespace;
      case 'metadata.uid': return randomUUID();
      case 'spec.nodeName': return 'localhost';
      case 'spec.serviceAccountName': return pod.spec.serviceAccountName ?? 'default';
      case 'status.podIP':
      case 'status.podIPs':
      case 'status.hostIP':
      case 'status.hostIPs': return LOOPBACK;
      default: throw new Error(`${pod.name}: fieldRef ${path} is not supported`);
    }
  }

  private resourceValue(pod: LocalPod, container: Container, ref: NonNullable<EnvVar['valueFrom']>['resourceFieldRef'] & object): string {
    const target = ref.containerName ? pod.spec.containers.find((c) => c.name === ref.containerName) : container;
    if (!target) throw new Error(`${pod.name}/${container.name}: resourceFieldRef names no container "${ref.containerName}"`);
    const [kind, resource] = ref.resource.split(/\.(.*)/s, 2) as ['requests' | 'limits', string];
    const requests = target.resources?.requests ?? {};
    const limits = target.resources?.limits ?? {};
    // Requests default to limits; an unset limit would be the node's allocatable, which has no local meaning.
    const raw = kind === 'requests' ? requests[resource] ?? limits[resource] ?? 0 : limits[resource];
    if (raw === undefined) throw new Error(`${pod.name}/${target.name}: ${ref.resource} is not set (the node's allocatable has no local equivalent)`);
    return String(Math.ceil(parseQuantity(raw) / parseQuantity(ref.divisor ?? 1)));
  }

  private keyRef(kind: 'Secret' | 'ConfigMap', ref: { name: string; key: string; optional?: boolean }, pod: LocalPod, where: string): string | undefined {
    const data = this.objectData(kind, ref.name, pod.namespace);
    const value = data?.get(ref.key);
    if (value === undefined && !ref.optional) {
      throw new Error(`${where}: ${kind} ${pod.namespace}/${ref.name} ${data ? `has no key "${ref.key}"` : 'is not among the synthesized objects'}`);
    }
    return value?.toString('utf8');
  }

  /** The container's environment as the kubelet builds it (before the adaptations). */
  private environment(pod: LocalPod, container: Container): Map<string, string> {
    const env = new Map<string, string>();
    const where = `${pod.name}/${container.name}`;
    for (const from of container.envFrom ?? []) {
      const kind = from.secretRef ? 'Secret' : 'ConfigMap';
      const ref = from.secretRef ?? from.configMapRef;
      if (!ref) throw new Error(`${where}: envFrom ${JSON.stringify(from)} is not supported`);
      const data = this.objectData(kind, ref.name, pod.namespace);
      if (!data && !ref.optional) throw new Error(`${where}: envFrom ${kind} ${ref.name} is not among the synthesized objects`);
      for (const [k, v] of data ?? []) env.set(`${from.prefix ?? ''}${k}`, v.toString('utf8'));
    }
    for (const e of container.env ?? []) {
      const from = e.valueFrom;
      let value: string | undefined;
      if (!from) value = expandVariables(e.value ?? '', env);
      else if (from.fieldRef) value = this.fieldValue(pod, from.fieldRef.fieldPath);
      else if (from.resourceFieldRef) value = this.resourceValue(pod, container, from.resourceFieldRef);
      else if (from.secretKeyRef) value = this.keyRef('Secret', from.secretKeyRef, pod, `${where} env ${e.name}`);
      else if (from.configMapKeyRef) value = this.keyRef('ConfigMap', from.configMapKeyRef, pod, `${where} env ${e.name}`);
      else throw new Error(`${where}: env ${e.name} has an unsupported valueFrom ${JSON.stringify(from)}`);
      if (value !== undefined) env.set(e.name, value);
    }
    return env;
  }

  /** What a container runs here: its program's stand-in with the rewritten args and env (nothing is started). */
  localCommand(pod: LocalPod, container: Container): { run: LocalCommand; env: Record<string, string> } {
    const where = `${pod.name}/${container.name}`;
    const image = this.images[container.image];
    if (!image) {
      throw new Error(`${where}: image ${container.image} has no local stand-in (known: ${Object.keys(this.images).join(', ')})`);
    }
    if (container.workingDir) throw new Error(`${where}: workingDir is not supported`);
    const mounts = this.mounts(pod, container);
    const raw = this.environment(pod, container);
    // `command` replaces the entrypoint and drops the image's CMD; `args` alone follow the entrypoint.
    const argv = [...(container.command ?? image.entrypoint), ...(container.args ?? [])].map((a) => expandVariables(a, raw));
    const [program, ...args] = argv;
    const standIn = image.programs[program];
    if (!standIn) {
      throw new Error(`${where}: image ${container.image} has no local stand-in for program "${program}" (known: ${Object.keys(image.programs).join(', ')})`);
    }
    const env: Record<string, string> = {};
    for (const [name, value] of raw) env[name] = this.rewrite(value, `${where} env ${name}`, pod, mounts);
    const rewrittenArgs = args.map((a, i) => this.rewrite(a, `${where} arg ${i + 1}`, pod, mounts));
    return { run: standIn(rewrittenArgs), env };
  }

  private spawnContainer(pod: LocalPod, container: Container): ManagedProcess {
    const { run, env } = this.localCommand(pod, container);
    const owner = this.owner(pod, container);
    const home = join(pod.dir, 'home', container.name);
    mkdirSync(home, { recursive: true });
    chmodSync(home, 0o777);
    // A container's environment is the image's and the pod's, nothing from the test runner but PATH.
    const child = spawn(run.command, run.args, {
      cwd: run.cwd ?? pod.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOSTNAME: pod.name, HOME: home, ...run.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(owner.uid !== undefined ? { uid: owner.uid } : {}),
      ...(owner.gid !== undefined ? { gid: owner.gid } : {}),
    });
    return new ManagedProcess(`${pod.name}/${container.name}`, child);
  }

  /** The pods of a workload. */
  podsOf(kind: Workload['kind'], name: string): LocalPod[] {
    const pods = this.pods.filter((p) => p.workload.kind === kind && p.workload.metadata.name === name);
    if (!pods.length) throw new Error(`no ${kind} ${name} among the synthesized objects`);
    return pods;
  }

  /** Starts every replica of a workload (init containers first, to completion) and waits until all are ready. */
  async startWorkload(kind: Workload['kind'], name: string, options: { readyTimeoutMs?: number } = {}): Promise<LocalPod[]> {
    const pods = this.podsOf(kind, name);
    await Promise.all(pods.map(async (pod) => {
      this.started.push(pod);
      for (const init of pod.spec.initContainers ?? []) {
        const proc = this.spawnContainer(pod, init);
        const code = await proc.waitForExit();
        if (code !== 0) throw new Error(`${pod.name}: init container ${init.name} exited with ${code}:\n${proc.log}`);
      }
      for (const c of pod.spec.containers) pod.containers.set(c.name, this.spawnContainer(pod, c));
    }));
    await Promise.all(pods.map((pod) => this.waitReady(pod, options.readyTimeoutMs ?? 60_000)));
    return pods;
  }

  /** Waits until every container's declared readiness probe succeeds (a container without one: while it runs). */
  async waitReady(pod: LocalPod, timeoutMs: number): Promise<void> {
    await Promise.all(pod.spec.containers.map((c) => waitFor(`${pod.name}/${c.name} ready`, async () => {
      const proc = pod.containers.get(c.name);
      if (!proc?.running) throw new StopWaiting(`${pod.name}/${c.name} is not running:\n${pod.logs()}`);
      return c.readinessProbe ? this.probe(pod, c.readinessProbe) : true;
    }, { timeoutMs, intervalMs: 200 }).catch((err: Error) => {
      throw new Error(`${err.message}\n${err instanceof StopWaiting ? '' : pod.logs()}`);
    })));
  }

  /** One probe or hook action against the pod's local ports. */
  private async probe(pod: LocalPod, probe: Probe): Promise<boolean> {
    const timeoutMs = Math.max(1, probe.timeoutSeconds ?? 1) * 1000;
    if (probe.httpGet) {
      if (probe.httpGet.host || (probe.httpGet.scheme ?? 'HTTP') !== 'HTTP') throw new StopWaiting(`httpGet host/scheme ${JSON.stringify(probe.httpGet)} not supported`);
      const { status } = await httpGet(`http://${LOOPBACK}:${pod.localPort(probe.httpGet.port)}${probe.httpGet.path ?? '/'}`, timeoutMs);
      return status >= 200 && status < 400;
    }
    if (probe.tcpSocket) {
      const port = pod.localPort(probe.tcpSocket.port);
      return new Promise<boolean>((resolve) => {
        const socket = net.connect({ port, host: LOOPBACK });
        socket.setTimeout(timeoutMs, () => { socket.destroy(); resolve(false); });
        socket.once('connect', () => { socket.destroy(); resolve(true); });
        socket.once('error', () => resolve(false));
      });
    }
    throw new StopWaiting(`${pod.name}: probe ${JSON.stringify(probe)} is not supported (httpGet and tcpSocket are)`);
  }

  /** The loopback address behind `service`'s port (by name or number), as a client in the namespace reaches it. */
  serviceAddress(service: string, port: string | number, namespace?: string): { host: string; port: number } {
    const svc = this.objects.find((o): o is Service => o.kind === 'Service' && o.metadata.name === service
      && (namespace === undefined || o.metadata.namespace === namespace));
    if (!svc) throw new Error(`no Service ${service} among the synthesized objects`);
    const servicePort = svc.spec.ports?.find((p) => (typeof port === 'string' ? p.name === port : p.port === port));
    if (!servicePort) throw new Error(`Service ${service} has no port ${port}`);
    const address = this.hosts.get(svc.metadata.name)!(servicePort.port);
    if (!address) throw new Error(`Service ${service} port ${port}: no pod behind it serves that port`);
    const [host, local] = address.split(':');
    return { host, port: Number(local) };
  }

  /** Stops the started pods, last started first: preStop hooks, then SIGTERM, SIGKILL after the grace period. */
  async stop(): Promise<void> {
    for (const pod of this.started.reverse()) {
      const graceMs = Math.min(pod.spec.terminationGracePeriodSeconds ?? 30, this.options.maxGraceSeconds ?? 10) * 1000;
      await Promise.all(pod.spec.containers.map(async (c) => {
        const proc = pod.containers.get(c.name);
        if (!proc?.running) return;
        const hook = c.lifecycle?.preStop;
        const started = Date.now();
        if (hook?.httpGet) {
          await httpGet(`http://${LOOPBACK}:${pod.localPort(hook.httpGet.port)}${hook.httpGet.path ?? '/'}`, graceMs).catch(() => undefined);
        }
        await proc.stop('SIGTERM', Math.max(0, graceMs - (Date.now() - started)));
      }));
    }
    this.started.length = 0;
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Every started container's recent output. */
  logs(): string {
    return this.pods.map((p) => p.logs()).join('\n');
  }
}
