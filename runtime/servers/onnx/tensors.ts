import { InferenceSession, OnnxValue, Tensor } from 'onnxruntime-node';
import { CONTENTS_WIRE_NAMES, ContentsField, Datatype, datatypeNamed, datatypeOfOrt, DATATYPES } from './datatypes';
import { InferTensorContents } from '../../../proto/gen/grpc_predict_v2';
import type { ModelInferRequest_InferInputTensor, ModelInferResponse_InferOutputTensor } from '../../../proto/gen/grpc_predict_v2';
import { invalidArgument } from '../../src/errors';
import { decodeRawBytes, encodeRawBytes } from '../shared/bytes-tensor';

/** One input or output of a loaded model, as its ONNX graph declares it. */
export interface TensorSpec {
  readonly name: string;
  /** Undefined for a non-tensor value (sequence, map) or a type KServe v2 cannot carry. */
  readonly datatype?: Datatype;
  /** onnxruntime's name of the type, for messages. */
  readonly ortType: string;
  /** Fixed sizes, or symbolic names / negative numbers for dimensions of any size; empty when the graph gives none. */
  readonly shape: readonly (number | string)[];
}

/** The specs of a session's inputs or outputs. */
export function specsOf(metadata: readonly InferenceSession.ValueMetadata[]): TensorSpec[] {
  return metadata.map((value) => {
    if (!value.isTensor) return { name: value.name, ortType: 'non-tensor value', shape: [] };
    const datatype = datatypeOfOrt(value.type);
    return { name: value.name, ortType: value.type, shape: [...value.shape], ...(datatype ? { datatype } : {}) };
  });
}

/** KServe v2 metadata shape: a dimension of any size is -1. */
export function metadataShape(spec: TensorSpec): number[] {
  return spec.shape.map((dim) => (typeof dim === 'number' && dim >= 0 ? dim : -1));
}

/** The typed-contents lists that hold plain numbers. */
type NumberContentsField = Exclude<ContentsField, 'boolContents' | 'bytesContents'>;

type NumericArrayConstructor = { new (buffer: ArrayBuffer): Tensor.DataType; from(values: ArrayLike<number>): Tensor.DataType };

/** Typed arrays of the fixed-width, number-valued onnxruntime types (FP16 travels as its raw 16 bits). */
const NUMERIC_ARRAYS: Partial<Record<Tensor.Type, NumericArrayConstructor>> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  bool: Uint8Array,
};

/**
 * Converts one request input to an onnxruntime tensor after checking it against the model's declaration. Throws
 * INVALID_ARGUMENT naming the tensor and what the model expects. `raw` is the input's raw_input_contents entry,
 * when the request uses raw contents.
 */
export function inputTensor(modelId: string, input: ModelInferRequest_InferInputTensor, raw: Uint8Array | undefined,
  spec: TensorSpec): Tensor {
  const what = `input tensor "${input.name}"`;
  const datatype = spec.datatype;
  if (!datatype) {
    throw invalidArgument(`${what} of model ${modelId} has onnxruntime type ${spec.ortType}, which KServe v2 cannot carry`);
  }
  if (input.datatype !== datatype.name) {
    const known = datatypeNamed(input.datatype) ? '' : ` (not a KServe v2 datatype: use one of ${DATATYPES.map((d) => d.name).join(', ')})`;
    throw invalidArgument(`${what} has datatype ${input.datatype || '(none)'}${known}; model ${modelId} expects ${datatype.name}`);
  }
  const count = checkShape(modelId, what, input.shape, spec);
  return raw ? rawTensor(input.name, datatype, raw, count, input.shape) : typedTensor(what, datatype, input.contents, count, input.shape);
}

/** Checks the request's shape against the declared one and returns its element count. */
function checkShape(modelId: string, what: string, shape: readonly number[], spec: TensorSpec): number {
  const expected = `[${spec.shape.map((dim) => (typeof dim === 'number' && dim >= 0 ? dim : -1)).join(', ')}]`;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw invalidArgument(`${what} has shape [${shape.join(', ')}]: dimensions must be whole numbers, 0 or more; model ${modelId} expects ${expected}`);
    }
  }
  // An empty declared shape means onnxruntime knows none; onnxruntime itself checks the rank then.
  if (spec.shape.length > 0) {
    const mismatch = shape.length !== spec.shape.length
      || spec.shape.some((dim, i) => typeof dim === 'number' && dim >= 0 && shape[i] !== dim);
    if (mismatch) {
      throw invalidArgument(`${what} has shape [${shape.join(', ')}]; model ${modelId} expects ${expected} (-1: any size)`);
    }
  }
  return shape.reduce((product, dim) => product * dim, 1);
}

function rawTensor(name: string, datatype: Datatype, raw: Uint8Array, count: number, dims: readonly number[]): Tensor {
  const what = `input tensor "${name}"`;
  if (datatype.ort === 'string') {
    const elements = decodeRawBytes(raw, name);
    if (elements.length !== count) {
      throw invalidArgument(`${what}: raw contents hold ${elements.length} BYTES elements; its shape [${dims.join(', ')}] needs ${count}`);
    }
    return new Tensor('string', elements.map((element) => element.toString('utf8')), dims);
  }
  const expectedBytes = count * datatype.bytesPerElement;
  if (raw.length !== expectedBytes) {
    throw invalidArgument(`${what}: raw contents hold ${raw.length} bytes; shape [${dims.join(', ')}] of ${datatype.name} `
      + `needs ${expectedBytes} (${count} × ${datatype.bytesPerElement})`);
  }
  // A copy into fresh memory: protobuf slices may be misaligned for typed arrays. Raw contents are little-endian,
  // as typed arrays are on every platform Node runs on.
  const bytes = new Uint8Array(expectedBytes);
  bytes.set(raw);
  if (datatype.ort === 'bool') {
    for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i] === 0 ? 0 : 1;
  }
  const buffer = bytes.buffer;
  if (datatype.ort === 'int64') return new Tensor('int64', new BigInt64Array(buffer), dims);
  if (datatype.ort === 'uint64') return new Tensor('uint64', new BigUint64Array(buffer), dims);
  return new Tensor(datatype.ort, new NUMERIC_ARRAYS[datatype.ort]!(buffer), dims);
}

function typedTensor(what: string, datatype: Datatype, contents: InferTensorContents | undefined, count: number,
  dims: readonly number[]): Tensor {
  const field = datatype.contents;
  if (!field) {
    throw invalidArgument(`${what} is ${datatype.name}, which KServe v2 carries only in raw_input_contents (it has no typed contents list)`);
  }
  const all = contents ?? InferTensorContents.fromPartial({});
  for (const other of Object.keys(CONTENTS_WIRE_NAMES) as ContentsField[]) {
    if (other !== field && all[other].length > 0) {
      throw invalidArgument(`${what} is ${datatype.name}, whose values belong in ${CONTENTS_WIRE_NAMES[field]}; `
        + `got ${all[other].length} values in ${CONTENTS_WIRE_NAMES[other]}`);
    }
  }
  const values = all[field];
  if (values.length !== count) {
    throw invalidArgument(`${what} holds ${values.length} values in ${CONTENTS_WIRE_NAMES[field]}; its shape [${dims.join(', ')}] needs ${count}`);
  }
  switch (datatype.ort) {
    case 'string':
      return new Tensor('string', all.bytesContents.map((element) => element.toString('utf8')), dims);
    case 'bool':
      return new Tensor('bool', Uint8Array.from(all.boolContents, (b) => (b ? 1 : 0)), dims);
    case 'int64':
      return new Tensor('int64', BigInt64Array.from(all.int64Contents, (v) => BigInt(v)), dims);
    case 'uint64':
      return new Tensor('uint64', BigUint64Array.from(all.uint64Contents, (v) => BigInt(v)), dims);
    default: {
      const numbers = values as number[];
      if (datatype.min !== undefined && datatype.max !== undefined) checkRange(what, datatype, numbers);
      return new Tensor(datatype.ort, NUMERIC_ARRAYS[datatype.ort]!.from(numbers), dims);
    }
  }
}

/** A value outside a narrow integer type would silently wrap in its typed array: refuse it instead. */
function checkRange(what: string, datatype: Datatype, values: readonly number[]): void {
  const index = values.findIndex((v) => !Number.isInteger(v) || v < datatype.min! || v > datatype.max!);
  if (index >= 0) {
    throw invalidArgument(`${what}: element ${index} is ${values[index]}, outside ${datatype.name}'s range ${datatype.min}..${datatype.max}`);
  }
}

/** One response output, and its raw contents when the answer is raw. */
export interface ConvertedOutput {
  readonly tensor: ModelInferResponse_InferOutputTensor;
  readonly raw?: Buffer;
}

/**
 * Converts an onnxruntime result to a KServe v2 output, as typed contents or (when `asRaw`) raw contents. Throws
 * INVALID_ARGUMENT when the value cannot be carried in the requested form.
 */
export function outputTensor(name: string, value: OnnxValue, asRaw: boolean): ConvertedOutput {
  const what = `output tensor "${name}"`;
  if (!isTensor(value)) throw invalidArgument(`${what} is not a tensor (a sequence or map), which KServe v2 cannot carry; request other outputs`);
  const datatype = datatypeOfOrt(value.type);
  if (!datatype) throw invalidArgument(`${what} has onnxruntime type ${value.type}, which KServe v2 cannot carry; request other outputs`);
  const header = { name, datatype: datatype.name, shape: [...value.dims], parameters: {} };
  if (asRaw) return { tensor: { ...header, contents: undefined }, raw: rawOf(value) };

  const contents = InferTensorContents.fromPartial({});
  switch (value.type) {
    case 'string':
      contents.bytesContents = (value.data as string[]).map((text) => Buffer.from(text, 'utf8'));
      break;
    case 'bool':
      contents.boolContents = Array.from(value.data as Uint8Array, (b) => b !== 0);
      break;
    case 'int64':
      contents.int64Contents = exactNumbers(what, value.data as BigInt64Array);
      break;
    case 'uint64':
      contents.uint64Contents = exactNumbers(what, value.data as BigUint64Array);
      break;
    case 'float16':
      throw invalidArgument(`${what} is FP16, which KServe v2 carries only in raw contents; send the inputs in raw_input_contents to get raw outputs`);
    default:
      contents[datatype.contents as NumberContentsField] = Array.from(value.data as ArrayLike<number>);
  }
  return { tensor: { ...header, contents } };
}

function isTensor(value: OnnxValue): value is Tensor {
  return typeof (value as Partial<Tensor>).type === 'string' && Array.isArray((value as Partial<Tensor>).dims);
}

/** Raw little-endian bytes of a tensor (length-prefixed elements for BYTES). */
function rawOf(tensor: Tensor): Buffer {
  if (tensor.type === 'string') return encodeRawBytes((tensor.data as string[]).map((text) => Buffer.from(text, 'utf8')));
  const data = tensor.data as Exclude<Tensor.DataType, string[]>;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** 64-bit integers as numbers; the typed lists are numbers here, so a value beyond 2^53 must travel raw. */
function exactNumbers(what: string, data: BigInt64Array | BigUint64Array): number[] {
  const numbers = new Array<number>(data.length);
  for (let i = 0; i < data.length; i++) {
    const n = Number(data[i]);
    if (!Number.isSafeInteger(n)) {
      throw invalidArgument(`${what}: element ${i} (${data[i]}) does not fit typed contents exactly; send the inputs in raw_input_contents to get raw outputs`);
    }
    numbers[i] = n;
  }
  return numbers;
}
