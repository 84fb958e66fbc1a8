import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ConvertedOutput, inputTensor, metadataShape, outputTensor, TensorSpec } from './tensors';
import type { InferTensorContents, ModelInferRequest, ModelInferResponse } from '../../../proto/gen/grpc_predict_v2';
import { internal, invalidArgument } from '../../src/errors';

/** What inference needs of a loaded model. */
export interface InferenceModel {
  readonly id: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly session: Pick<InferenceSession, 'run'>;
}

/** A checked request: onnxruntime's feeds, the outputs to fetch, and the form of the answer. */
export interface PreparedInference {
  readonly feeds: Record<string, Tensor>;
  readonly fetches: readonly string[];
  /** Answer in raw_output_contents, because the request used raw_input_contents. */
  readonly raw: boolean;
}

/** `"x" (FP32 [-1, 4])`: how messages describe a declared tensor. */
export function describeSpec(spec: TensorSpec): string {
  return `"${spec.name}" (${spec.datatype?.name ?? spec.ortType} [${metadataShape(spec).join(', ')}])`;
}

function hasTypedContents(contents: InferTensorContents | undefined): boolean {
  return contents !== undefined && Object.values(contents).some((list: unknown[]) => list.length > 0);
}

/**
 * Checks a ModelInfer request against the model's inputs and outputs and converts its tensors. Throws
 * INVALID_ARGUMENT naming the offending tensor and what the model expects.
 */
export function prepareInference(model: InferenceModel, request: ModelInferRequest): PreparedInference {
  const { inputs, rawInputContents } = request;
  const raw = rawInputContents.length > 0;
  if (raw && rawInputContents.length !== inputs.length) {
    throw invalidArgument(`raw_input_contents has ${rawInputContents.length} entries for ${inputs.length} input tensors; `
      + 'when used it must hold one entry per input, in the same order');
  }
  const declared = new Map(model.inputs.map((spec) => [spec.name, spec]));
  const feeds: Record<string, Tensor> = {};
  inputs.forEach((input, i) => {
    const spec = declared.get(input.name);
    if (!spec) {
      throw invalidArgument(`input tensor "${input.name}" does not exist in model ${model.id}; it takes ${model.inputs.map(describeSpec).join(', ')}`);
    }
    if (Object.prototype.hasOwnProperty.call(feeds, input.name)) throw invalidArgument(`input tensor "${input.name}" appears more than once`);
    if (raw && hasTypedContents(input.contents)) {
      throw invalidArgument(`input tensor "${input.name}": data is in both contents and raw_input_contents; use one form for all inputs`);
    }
    feeds[input.name] = inputTensor(model.id, input, raw ? rawInputContents[i] : undefined, spec);
  });
  for (const spec of model.inputs) {
    if (!Object.prototype.hasOwnProperty.call(feeds, spec.name)) {
      throw invalidArgument(`input tensor "${spec.name}" is missing; model ${model.id} takes ${describeSpec(spec)}`);
    }
  }

  let fetches: string[];
  if (request.outputs.length === 0) {
    // Outputs KServe v2 cannot carry are left out rather than failing every call that names none.
    fetches = model.outputs.filter((spec) => spec.datatype !== undefined).map((spec) => spec.name);
    if (fetches.length === 0) throw invalidArgument(`model ${model.id} has no output KServe v2 can carry`);
  } else {
    const known = new Set(model.outputs.map((spec) => spec.name));
    fetches = [];
    for (const { name } of request.outputs) {
      if (!known.has(name)) {
        throw invalidArgument(`requested output tensor "${name}" does not exist in model ${model.id}; it has ${model.outputs.map(describeSpec).join(', ')}`);
      }
      if (!fetches.includes(name)) fetches.push(name);
    }
  }
  return { feeds, fetches, raw };
}

/** The response: outputs in the order fetched, in the request's form. */
export function inferResponse(model: InferenceModel, request: ModelInferRequest, prepared: PreparedInference,
  results: Readonly<Record<string, unknown>>): ModelInferResponse {
  const converted: ConvertedOutput[] = prepared.fetches.map((name) => {
    const value = results[name];
    if (value === undefined) throw internal(`onnxruntime returned no value for output "${name}" of model ${model.id}`);
    return outputTensor(name, value as Tensor, prepared.raw);
  });
  return {
    modelName: model.id,
    modelVersion: '',
    id: request.id,
    parameters: {},
    outputs: converted.map((output) => output.tensor),
    rawOutputContents: prepared.raw ? converted.map((output) => output.raw!) : [],
  };
}

/** onnxruntime's own input checks: the request was wrong, not the model. */
const REQUEST_ERRORS = /^(Got invalid dimensions|Invalid rank|Unexpected input data type|input '.*' is missing)/;

/** Runs one ModelInfer request. Rejects with INVALID_ARGUMENT for bad requests, INTERNAL when onnxruntime fails. */
export async function inferOnnx(model: InferenceModel, request: ModelInferRequest): Promise<ModelInferResponse> {
  const prepared = prepareInference(model, request);
  let results: InferenceSession.ReturnType;
  try {
    results = await model.session.run(prepared.feeds, [...prepared.fetches]);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (REQUEST_ERRORS.test(message)) throw invalidArgument(`model ${model.id} refused the inputs: ${message}`);
    throw internal(`onnxruntime failed to run model ${model.id}: ${message}`, err);
  }
  return inferResponse(model, request, prepared, results);
}
