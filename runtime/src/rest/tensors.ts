import {
  DATATYPES, Datatype, JsonElement, TensorElements, elementFromJson, elementToJson, fromContents, isDatatype, toContents,
} from './datatypes';
import { decodeRaw, encodeRaw } from './raw';
import type {
  InferParameter, ModelInferRequest, ModelInferRequest_InferInputTensor, ModelInferRequest_InferRequestedOutputTensor, ModelInferResponse,
} from '../../../proto/gen/grpc_predict_v2';
import { MeshError, internal, invalidArgument } from '../errors';

/**
 * KServe v2 REST (Open Inference Protocol) JSON ↔ the gRPC ModelInfer messages. Pure; no I/O. Every error names the
 * tensor or field at fault: request problems are INVALID_ARGUMENT, an unconvertible response is INTERNAL.
 */

export type ParameterJson = boolean | number | string;
export type ParametersJson = Record<string, ParameterJson>;

export interface OutputTensorJson {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: ParametersJson;
  data: JsonElement[];
}

export interface InferResponseJson {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: ParametersJson;
  outputs: OutputTensorJson[];
}

export interface InferTarget {
  readonly model: string;
  /** Empty for "the server's choice". */
  readonly version: string;
}

export interface RequestConversionOptions {
  /** Send every input as raw_input_contents instead of typed contents. FP16 inputs force this. @default false */
  readonly rawInputContents?: boolean;
}

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Builds the ModelInferRequest for a parsed JSON body; model name and version come from the URL. */
export function inferRequestFromJson(body: unknown, target: InferTarget, options: RequestConversionOptions = {}): ModelInferRequest {
  if (!isObject(body)) throw invalidArgument('the request body must be a JSON object with an "inputs" array');
  const { id, inputs, outputs } = body;
  if (id !== undefined && typeof id !== 'string') throw invalidArgument('"id" must be a string');
  if (!Array.isArray(inputs)) throw invalidArgument('the request must have an "inputs" array of tensors');
  if (outputs !== undefined && !Array.isArray(outputs)) throw invalidArgument('"outputs" must be an array of {"name": …} objects');

  const names = new Set<string>();
  const parsed = inputs.map((input, index) => {
    const tensor = inputFromJson(input, index);
    if (names.has(tensor.name)) throw invalidArgument(`input tensor "${tensor.name}" appears more than once`);
    names.add(tensor.name);
    return tensor;
  });
  const raw = options.rawInputContents === true || parsed.some((t) => t.datatype === 'FP16');
  return {
    modelName: target.model,
    modelVersion: target.version,
    id: id ?? '',
    parameters: parametersFromJson(body.parameters, 'request "parameters"'),
    inputs: parsed.map((t): ModelInferRequest_InferInputTensor => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape,
      parameters: t.parameters,
      contents: raw ? undefined : toContents(t.datatype, t.elements),
    })),
    outputs: (outputs ?? []).map(requestedOutputFromJson),
    rawInputContents: raw ? parsed.map((t) => encodeRaw(t.datatype, t.elements, `input tensor "${t.name}"`)) : [],
  };
}

interface ParsedInput {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: number[];
  readonly parameters: Record<string, InferParameter>;
  readonly elements: TensorElements;
}

function inputFromJson(input: unknown, index: number): ParsedInput {
  if (!isObject(input)) throw invalidArgument(`inputs[${index}] must be an object with name, shape, datatype and data`);
  const { name, datatype, shape, data } = input;
  if (typeof name !== 'string' || name === '') throw invalidArgument(`inputs[${index}] needs a non-empty string "name"`);
  const label = `input tensor "${name}"`;
  if (typeof datatype !== 'string' || !isDatatype(datatype)) {
    throw invalidArgument(`${label} has datatype ${JSON.stringify(datatype)}; KServe v2 datatypes are ${DATATYPES.join(', ')}`);
  }
  const dims = shapeFromJson(shape, label);
  if (!Array.isArray(data)) throw invalidArgument(`${label} needs "data": an array of elements (flat or nested in row-major order)`);
  return {
    name,
    datatype,
    shape: dims,
    parameters: parametersFromJson(input.parameters, `${label} "parameters"`),
    elements: tensorDataFromJson(datatype, dims, data, label),
  };
}

function shapeFromJson(shape: unknown, label: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw invalidArgument(`${label} needs "shape": an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

/** Number of elements a shape holds, refusing products too large to count exactly. */
export function elementCount(shape: readonly number[], label: string): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  if (!Number.isSafeInteger(count)) throw invalidArgument(`${label} has shape [${shape.join(', ')}], too many elements to hold`);
  return count;
}

/**
 * Flattens `data` (flat or nested arrays) in row-major order, checks each element against `datatype`, and checks
 * the element count against the shape's. Iterative, so deeply nested input cannot exhaust the stack.
 */
export function tensorDataFromJson(datatype: Datatype, shape: readonly number[], data: readonly unknown[], label: string): TensorElements {
  const expected = elementCount(shape, label);
  const elements: (boolean | number | Buffer)[] = [];
  const stack: { items: readonly unknown[]; next: number }[] = [{ items: data, next: 0 }];
  let seen = 0;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next >= top.items.length) {
      stack.pop();
      continue;
    }
    const item = top.items[top.next++];
    if (Array.isArray(item)) {
      stack.push({ items: item, next: 0 });
      continue;
    }
    seen++;
    // Keep counting past the expected number so the error can say how many there were, but stop converting.
    if (seen <= expected) elements.push(elementFromJson(datatype, item, `${label} element ${seen - 1}`));
  }
  if (seen !== expected) {
    throw invalidArgument(`${label} has shape [${shape.join(', ')}] (${expected} element${expected === 1 ? '' : 's'}) `
      + `but its data holds ${seen}`);
  }
  return elements as TensorElements;
}

function requestedOutputFromJson(output: unknown, index: number): ModelInferRequest_InferRequestedOutputTensor {
  if (!isObject(output) || typeof output.name !== 'string' || output.name === '') {
    throw invalidArgument(`outputs[${index}] must be an object with a non-empty string "name"`);
  }
  return { name: output.name, parameters: parametersFromJson(output.parameters, `requested output "${output.name}" "parameters"`) };
}

/** KServe v2 parameters: booleans, integers (int64) and strings. */
export function parametersFromJson(parameters: unknown, label: string): Record<string, InferParameter> {
  if (parameters === undefined || parameters === null) return {};
  if (!isObject(parameters)) throw invalidArgument(`${label} must be an object`);
  const out: Record<string, InferParameter> = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (typeof value === 'boolean') {out[key] = { boolParam: value };} else if (typeof value === 'string') {out[key] = { stringParam: value };} else if (typeof value === 'number' && Number.isSafeInteger(value)) {out[key] = { int64Param: value };} else {
      throw invalidArgument(`${label}: "${key}" is ${JSON.stringify(value) ?? String(value)}; parameters are booleans, strings `
        + 'or integers within ±(2^53 - 1)');
    }
  }
  return out;
}

export function parametersToJson(parameters: Record<string, InferParameter>): ParametersJson | undefined {
  const entries = Object.entries(parameters);
  if (entries.length === 0) return undefined;
  const out: ParametersJson = {};
  for (const [key, p] of entries) {
    const value = p.boolParam ?? p.int64Param ?? p.stringParam;
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * The JSON answer for a ModelInferResponse, reading each output from its typed contents or, when the response uses
 * them, from raw_output_contents (matched to outputs by position). Data is flat, in row-major order.
 */
export function inferResponseToJson(response: ModelInferResponse): InferResponseJson {
  const raw = response.rawOutputContents;
  if (raw.length > 0 && raw.length !== response.outputs.length) {
    throw internal(`the model's response has ${raw.length} raw_output_contents for ${response.outputs.length} outputs`);
  }
  const outputs = response.outputs.map((output, i): OutputTensorJson => {
    const label = `output tensor "${output.name}"`;
    if (!isDatatype(output.datatype)) throw internal(`the model's ${label} has datatype "${output.datatype}", not a KServe v2 datatype`);
    if (output.datatype === 'FP16' && raw.length === 0) throw internal(`the model's FP16 ${label} came without raw_output_contents`);
    let elements: TensorElements;
    try {
      elements = raw.length > 0 ? decodeRaw(output.datatype, raw[i], label) : fromContents(output.datatype, output.contents);
    } catch (err) {
      throw err instanceof MeshError ? internal(`the model's response cannot be given as JSON: ${err.message}`, err) : err;
    }
    const parameters = parametersToJson(output.parameters);
    const data = (elements as (boolean | number | Buffer)[]).map(elementToJson);
    return { name: output.name, datatype: output.datatype, shape: output.shape, ...(parameters ? { parameters } : {}), data };
  });
  const parameters = parametersToJson(response.parameters);
  return {
    model_name: response.modelName,
    model_version: response.modelVersion,
    id: response.id,
    ...(parameters ? { parameters } : {}),
    outputs,
  };
}
