/**
 * Upstream's data-plane configuration (`MM_DATAPLANE_CONFIG_PATH`): which methods carry the model id in the request
 * message, and whether methods not listed are forwarded at all:
 * `{"rpcConfigs": {"inference.GRPCInferenceService/ModelInfer": {"idExtractionPath": [1], "vModelId": true}}, "allowOtherRpcs": true}`.
 */

export interface RpcConfig {
  /** Field-number path of the string field holding the id. */
  readonly idExtractionPath: readonly number[];
  /** The extracted id is a vmodel id (falling back to a model id). */
  readonly vModelId: boolean;
}

export interface DataplaneConfig {
  /** Keyed by `package.Service/Method`. */
  readonly rpcConfigs: ReadonlyMap<string, RpcConfig>;
  readonly allowOtherRpcs: boolean;
}

/** Without a config file: KServe v2 inference and metadata name their model in field 1, read as a vmodel id. */
export const DEFAULT_DATAPLANE_CONFIG: DataplaneConfig = {
  rpcConfigs: new Map([
    ['inference.GRPCInferenceService/ModelInfer', { idExtractionPath: [1], vModelId: true }],
    ['inference.GRPCInferenceService/ModelMetadata', { idExtractionPath: [1], vModelId: true }],
  ]),
  allowOtherRpcs: true,
};

export class DataplaneConfigError extends Error {
  constructor(message: string) {
    super(`dataplane config: ${message}`);
    this.name = 'DataplaneConfigError';
  }
}

export function parseDataplaneConfig(json: string): DataplaneConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new DataplaneConfigError(`not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new DataplaneConfigError('must be a JSON object');
  const d = doc as Record<string, unknown>;
  const rpcConfigs = new Map<string, RpcConfig>();
  const rpcs = d.rpcConfigs ?? {};
  if (typeof rpcs !== 'object' || rpcs === null || Array.isArray(rpcs)) throw new DataplaneConfigError('rpcConfigs must be an object keyed by "package.Service/Method"');
  for (const [method, spec] of Object.entries(rpcs)) {
    if (!/^[\w.]+\/\w+$/.test(method)) throw new DataplaneConfigError(`rpcConfigs key "${method}" must look like "package.Service/Method"`);
    const s = (spec ?? {}) as Record<string, unknown>;
    const path = s.idExtractionPath ?? [];
    if (!Array.isArray(path) || path.some((n) => !Number.isInteger(n) || (n as number) < 1)) {
      throw new DataplaneConfigError(`rpcConfigs["${method}"].idExtractionPath must be a list of positive field numbers`);
    }
    rpcConfigs.set(method, { idExtractionPath: path as number[], vModelId: s.vModelId === true });
  }
  const allow = d.allowOtherRpcs;
  if (allow !== undefined && typeof allow !== 'boolean') throw new DataplaneConfigError('allowOtherRpcs must be true or false');
  return { rpcConfigs, allowOtherRpcs: allow ?? true };
}
