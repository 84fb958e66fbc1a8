/**
 * Model type labels and type constraints, derived exactly as modelmesh-serving derives them: a runtime offers
 * `mt:<format>`, `mt:<format>:<version>` (for auto-selectable formats), `pv:<protocol>` and `rt:<runtime>`; a model type
 * requires the labels it names.
 */

/** A model format a runtime serves, as in the ServingRuntime's `supportedModelFormats`. */
export interface ModelFormat {
  /** Format name, e.g. `onnx`, `sklearn`, `pytorch-mar`. */
  readonly name: string;
  /** Format version, e.g. `1`. @default - any version */
  readonly version?: string;
  /** Whether models of this format may be placed on the runtime without naming it. @default false */
  readonly autoSelect?: boolean;
}

/** What the label derivation needs to know about a runtime. */
export interface RuntimeLabelSource {
  /** Runtime name (`rt:<name>`). */
  readonly name: string;
  /** Formats it serves. */
  readonly supportedModelFormats: readonly ModelFormat[];
  /** Protocols it speaks (`pv:<protocol>`). */
  readonly protocolVersions: readonly string[];
}

/** `MM_LABELS` of a runtime's pods, sorted. `restEnabled` adds `pv:v2` beside `pv:grpc-v2`, as upstream's REST proxy does. */
export function runtimeLabels(runtime: RuntimeLabelSource, restEnabled: boolean): string[] {
  const labels = new Set<string>();
  for (const format of runtime.supportedModelFormats) {
    if (format.autoSelect !== true) continue;
    labels.add(`mt:${format.name}`);
    if (format.version) labels.add(`mt:${format.name}:${format.version}`);
  }
  for (const protocol of runtime.protocolVersions) {
    labels.add(`pv:${protocol}`);
    if (restEnabled && protocol === 'grpc-v2') labels.add('pv:v2');
  }
  labels.add(`rt:${runtime.name}`);
  return [...labels].sort();
}

/** The `type_constraints` document for all runtimes of a mesh, keys sorted; `_default` matches no runtime. */
export function typeConstraints(runtimes: readonly RuntimeLabelSource[], restEnabled: boolean): Record<string, { required: string[] }> {
  const constraints = new Map<string, string[]>();
  for (const runtime of runtimes) {
    const labels = runtimeLabels(runtime, restEnabled);
    const modelLabels = labels.filter((label) => label.startsWith('mt:'));
    const protocolLabels = labels.filter((label) => label.startsWith('pv:'));
    for (const label of labels) {
      if (!label.startsWith('pv:')) constraints.set(label, [label]);
    }
    for (const model of modelLabels) {
      for (const protocol of protocolLabels) constraints.set(`${model}|${protocol}`, [model, protocol]);
    }
  }
  constraints.set('_default', ['_no_runtime']);
  return Object.fromEntries([...constraints.keys()].sort().map((key) => [key, { required: constraints.get(key)! }]));
}

/** The model type string a declared model gets: `rt:<runtime>` when it names one, else `mt:<format>[:<version>]`. */
export function modelTypeOf(format: { readonly name: string; readonly version?: string }, runtimeName?: string): string {
  if (runtimeName) return `rt:${runtimeName}`;
  return format.version ? `mt:${format.name}:${format.version}` : `mt:${format.name}`;
}

/** Whether a runtime will accept a model of this format (and, when named, is that runtime). */
export function runtimeServes(runtime: RuntimeLabelSource, format: { readonly name: string; readonly version?: string },
  runtimeName?: string): boolean {
  if (runtimeName !== undefined) {
    return runtime.name === runtimeName && runtime.supportedModelFormats.some((f) => f.name === format.name
      && (format.version === undefined || f.version === undefined || f.version === format.version));
  }
  return runtime.supportedModelFormats.some((f) => f.autoSelect === true && f.name === format.name
    && (format.version === undefined || f.version === format.version));
}

/** upstream's dataplane API configuration: where each inference method carries the model id. */
export const DATAPLANE_API_CONFIG = {
  rpcConfigs: {
    'inference.GRPCInferenceService/ModelInfer': { idExtractionPath: [1], vModelId: true },
    'inference.GRPCInferenceService/ModelMetadata': { idExtractionPath: [1], vModelId: true },
    'tensorflow.serving.PredictionService/Predict': { idExtractionPath: [1, 1], vModelId: true },
    'org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions': { idExtractionPath: [1], vModelId: true },
  },
  allowOtherRpcs: true,
} as const;
