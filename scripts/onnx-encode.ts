/**
 * A minimal writer for the few ONNX protobuf messages a small inference graph needs (ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto), with
 * field numbers exactly as onnx/onnx.proto defines them. Output is deterministic: the same model gives the same
 * bytes, so a generated model can be committed and checked.
 */

/** TensorProto.DataType values. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;
export type OnnxDataTypeCode = typeof OnnxDataType[keyof typeof OnnxDataType];

/** A graph input or output: a tensor of `elemType` whose dims are sizes or symbolic names. */
export interface OnnxValueInfo {
  readonly name: string;
  readonly elemType: OnnxDataTypeCode;
  readonly dims: readonly (number | string)[];
}

/** An attribute of a node; only the kinds our graphs use. */
export type OnnxAttribute =
  | { readonly name: string; readonly int: number }
  | { readonly name: string; readonly ints: readonly number[] }
  | { readonly name: string; readonly float: number };

export interface OnnxNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly attributes?: readonly OnnxAttribute[];
}

/** A constant tensor stored in the model; `raw` holds its elements little-endian, row-major. */
export interface OnnxInitializer {
  readonly name: string;
  readonly dataType: OnnxDataTypeCode;
  readonly dims: readonly number[];
  readonly raw: Uint8Array;
}

export interface OnnxModelSpec {
  readonly irVersion: number;
  /** Version of the default ("ai.onnx") operator set. */
  readonly opsetVersion: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString?: string;
  readonly graphName: string;
  readonly nodes: readonly OnnxNode[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  readonly initializers?: readonly OnnxInitializer[];
}

// Protobuf wire types.
const VARINT = 0;
const FIXED32 = 5;
const LENGTH_DELIMITED = 2;

// AttributeProto.AttributeType values.
const ATTRIBUTE_FLOAT = 1;
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;

/** Base-128 varint of a non-negative safe integer (arithmetic, not bit operations, so it works past 2^31). */
function varint(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`cannot encode ${value} as a varint: it must be a non-negative safe integer`);
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function tag(field: number, wireType: number): Buffer {
  return varint(field * 8 + wireType);
}

function intField(field: number, value: number): Buffer {
  return Buffer.concat([tag(field, VARINT), varint(value)]);
}

function bytesField(field: number, value: Uint8Array): Buffer {
  return Buffer.concat([tag(field, LENGTH_DELIMITED), varint(value.length), value]);
}

function stringField(field: number, value: string): Buffer {
  return bytesField(field, Buffer.from(value, 'utf8'));
}

function floatField(field: number, value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeFloatLE(value);
  return Buffer.concat([tag(field, FIXED32), bytes]);
}

function message(...fields: Buffer[]): Buffer {
  return Buffer.concat(fields);
}

function encodeDimension(dim: number | string): Buffer {
  // TensorShapeProto.Dimension: dim_value = 1, dim_param = 2.
  return typeof dim === 'number' ? intField(1, dim) : stringField(2, dim);
}

function encodeValueInfo(value: OnnxValueInfo): Buffer {
  // TensorShapeProto: dim = 1. TypeProto.Tensor: elem_type = 1, shape = 2. TypeProto: tensor_type = 1.
  const shape = message(...value.dims.map((dim) => bytesField(1, encodeDimension(dim))));
  const tensorType = message(intField(1, value.elemType), bytesField(2, shape));
  const type = bytesField(1, tensorType);
  // ValueInfoProto: name = 1, type = 2.
  return message(stringField(1, value.name), bytesField(2, type));
}

function encodeAttribute(attribute: OnnxAttribute): Buffer {
  // AttributeProto: name = 1, f = 2, i = 3, ints = 8, type = 20.
  const name = stringField(1, attribute.name);
  if ('int' in attribute) return message(name, intField(3, attribute.int), intField(20, ATTRIBUTE_INT));
  if ('ints' in attribute) return message(name, ...attribute.ints.map((i) => intField(8, i)), intField(20, ATTRIBUTE_INTS));
  return message(name, floatField(2, attribute.float), intField(20, ATTRIBUTE_FLOAT));
}

function encodeNode(node: OnnxNode): Buffer {
  // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
  return message(
    ...node.inputs.map((input) => stringField(1, input)),
    ...node.outputs.map((output) => stringField(2, output)),
    ...(node.name === undefined ? [] : [stringField(3, node.name)]),
    stringField(4, node.opType),
    ...(node.attributes ?? []).map((attribute) => bytesField(5, encodeAttribute(attribute))),
  );
}

function encodeInitializer(tensor: OnnxInitializer): Buffer {
  // TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9.
  return message(
    ...tensor.dims.map((dim) => intField(1, dim)),
    intField(2, tensor.dataType),
    stringField(8, tensor.name),
    bytesField(9, tensor.raw),
  );
}

/** The serialized ModelProto. */
export function encodeOnnxModel(spec: OnnxModelSpec): Buffer {
  // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
  const graph = message(
    ...spec.nodes.map((node) => bytesField(1, encodeNode(node))),
    stringField(2, spec.graphName),
    ...(spec.initializers ?? []).map((tensor) => bytesField(5, encodeInitializer(tensor))),
    ...spec.inputs.map((input) => bytesField(11, encodeValueInfo(input))),
    ...spec.outputs.map((output) => bytesField(12, encodeValueInfo(output))),
  );
  // OperatorSetIdProto: domain = 1 (empty: the default ai.onnx set, so omitted), version = 2.
  const opset = intField(2, spec.opsetVersion);
  // ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6, graph = 7, opset_import = 8.
  return message(
    intField(1, spec.irVersion),
    stringField(2, spec.producerName),
    stringField(3, spec.producerVersion),
    ...(spec.docString === undefined ? [] : [stringField(6, spec.docString)]),
    bytesField(7, graph),
    bytesField(8, opset),
  );
}

/** Little-endian float32 bytes of `values`, for an initializer's `raw`. */
export function float32Raw(values: readonly number[]): Buffer {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes;
}
