import { Chart, Testing } from 'cdk8s';
import { EtcdConnection, ModelMesh, ModelMeshProps } from '../../../lib';

/** Helpers shared by the construct tests. */

export type Json = Record<string, any>;

/** A chart (without a namespace) and a mesh with a one-member etcd, plus whatever props are given. */
export function meshChart(props: ModelMeshProps = {}): { chart: Chart; mesh: ModelMesh } {
  const chart = Testing.chart();
  const mesh = new ModelMesh(chart, 'mesh', { etcd: EtcdConnection.cluster({ replicas: 1 }), ...props });
  return { chart, mesh };
}

/** A chart with a namespace, as certificates need one for their DNS names; its path is `test`, like `Testing.chart()`'s. */
export function namespacedChart(namespace = 'ml'): Chart {
  return new Chart(Testing.app(), 'test', { namespace });
}

/** The one object of a kind (and name, when given); fails the test when there is not exactly one. */
export function one(objects: Json[], kind: string, name?: string): Json {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` named ${name}` : ''}, found ${found.length}`);
  return found[0];
}

/** A container of a workload by name. */
export function containerOf(workload: Json, name: string): Json {
  const container = workload.spec.template.spec.containers.find((c: Json) => c.name === name);
  if (!container) throw new Error(`no container ${name} in ${workload.metadata.name}`);
  return container;
}

/** A container's env as name → value (valueFrom entries as their JSON). */
export function envOf(container: Json): Record<string, unknown> {
  return Object.fromEntries((container.env ?? []).map((e: Json) => [e.name, e.value ?? e.valueFrom]));
}
