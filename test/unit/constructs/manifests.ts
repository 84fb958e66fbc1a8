import { Application } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { hasCrdSchema, validateCrd } from './crd-schemas';
import { hasHandWrittenSchema, validateHandWritten } from './hand-written-schemas';
import { validateBuiltIn } from './k8s-schemas';
import { projectViolations, restrictedViolations } from './pod-security';

/** Offline validation of synthesized objects: schemas by kind, then the pod rules for workloads. */

type Json = Record<string, any>;

/** API groups of the built-in kinds the constructs emit. */
const BUILT_IN = /^(v1|apps\/v1|policy\/v1|autoscaling\/v2|networking\.k8s\.io\/v1)$/;

function validateOther(object: Json): string[] {
  const key = `${object.apiVersion}/${object.kind}`;
  // The Prometheus operator and Argo CD validators come from their CRDs (via kubernetes-models); they do not reject
  // unknown fields, so the objects this project emits for them are also held to the field lists below.
  const known: Record<string, { model: { new(data: any): { validate(): void } }; spec: string[] }> = {
    'monitoring.coreos.com/v1/ServiceMonitor': { model: ServiceMonitor as any, spec: ['selector', 'endpoints', 'namespaceSelector', 'jobLabel'] },
    'argoproj.io/v1alpha1/Application': { model: Application as any, spec: ['project', 'source', 'destination', 'syncPolicy'] },
  };
  const entry = known[key];
  if (!entry) return [`${key}: no schema to validate against`];
  const errors: string[] = [];
  try {
    new entry.model(object).validate();
  } catch (error) {
    errors.push(String((error as Error).message));
  }
  for (const field of Object.keys(object.spec ?? {})) if (!entry.spec.includes(field)) errors.push(`/spec unknown field ${field}`);
  return errors;
}

/** The pod spec of a workload object, if it is one. */
export function podSpecOf(object: Json): Json | undefined {
  if (object.kind === 'Pod') return object.spec;
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(object.kind)) return object.spec?.template?.spec;
  if (object.kind === 'CronJob') return object.spec?.jobTemplate?.spec?.template?.spec;
  return undefined;
}

/** Containers whose images need a writable root filesystem, as the presets declare (`torchserve`). */
const WRITABLE_ROOT = new Set(['torchserve']);

/** All problems of one object, each prefixed with `<kind>/<name>`. */
export function manifestProblems(object: Json): string[] {
  const name = `${object.kind}/${object.metadata?.name}`;
  let problems: string[];
  if (BUILT_IN.test(object.apiVersion)) problems = validateBuiltIn(object as any);
  else if (hasCrdSchema(object.apiVersion, object.kind)) problems = validateCrd(object as any);
  else if (hasHandWrittenSchema(object.apiVersion, object.kind)) problems = validateHandWritten(object as any);
  else problems = validateOther(object);
  const pod = podSpecOf(object);
  if (pod) problems = [...problems, ...restrictedViolations(pod), ...projectViolations(pod, WRITABLE_ROOT)];
  return problems.map((problem) => `${name}: ${problem}`);
}

/** All problems of a list of objects. */
export function allProblems(objects: readonly Json[]): string[] {
  return objects.flatMap(manifestProblems);
}
