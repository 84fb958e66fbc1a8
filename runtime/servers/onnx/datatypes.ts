import type { Tensor } from 'onnxruntime-node';
import type { InferTensorContents } from '../../../proto/gen/grpc_predict_v2';

/** The typed-contents list of InferTensorContents that carries a datatype's values. */
export type ContentsField = keyof InferTensorContents;

/** A KServe v2 datatype and how it maps to onnxruntime. */
export interface Datatype {
  /** KServe v2 name (`FP32`, `INT64`, `BYTES`, …). */
  readonly name: string;
  /** onnxruntime-node's tensor type. */
  readonly ort: Tensor.Type;
  /** Bytes per element in raw contents; 0 for BYTES, whose elements carry their own length. */
  readonly bytesPerElement: number;
  /** Where typed contents carry the values; undefined when KServe v2 has no such list (FP16: raw only). */
  readonly contents?: ContentsField;
  /** Bounds of integer types narrower than their contents list, so a value is refused rather than wrapped. */
  readonly min?: number;
  readonly max?: number;
}

/** Every datatype both KServe v2 and onnxruntime-node can carry. */
export const DATATYPES: readonly Datatype[] = [
  { name: 'BOOL', ort: 'bool', bytesPerElement: 1, contents: 'boolContents' },
  { name: 'UINT8', ort: 'uint8', bytesPerElement: 1, contents: 'uintContents', min: 0, max: 0xff },
  { name: 'UINT16', ort: 'uint16', bytesPerElement: 2, contents: 'uintContents', min: 0, max: 0xffff },
  { name: 'UINT32', ort: 'uint32', bytesPerElement: 4, contents: 'uintContents', min: 0, max: 0xffff_ffff },
  { name: 'UINT64', ort: 'uint64', bytesPerElement: 8, contents: 'uint64Contents' },
  { name: 'INT8', ort: 'int8', bytesPerElement: 1, contents: 'intContents', min: -0x80, max: 0x7f },
  { name: 'INT16', ort: 'int16', bytesPerElement: 2, contents: 'intContents', min: -0x8000, max: 0x7fff },
  { name: 'INT32', ort: 'int32', bytesPerElement: 4, contents: 'intContents', min: -0x8000_0000, max: 0x7fff_ffff },
  { name: 'INT64', ort: 'int64', bytesPerElement: 8, contents: 'int64Contents' },
  { name: 'FP16', ort: 'float16', bytesPerElement: 2 },
  { name: 'FP32', ort: 'float32', bytesPerElement: 4, contents: 'fp32Contents' },
  { name: 'FP64', ort: 'float64', bytesPerElement: 8, contents: 'fp64Contents' },
  { name: 'BYTES', ort: 'string', bytesPerElement: 0, contents: 'bytesContents' },
];

const BY_NAME = new Map(DATATYPES.map((d) => [d.name, d]));
const BY_ORT = new Map<string, Datatype>(DATATYPES.map((d) => [d.ort, d]));

/** The datatype with this KServe v2 name. */
export function datatypeNamed(name: string): Datatype | undefined {
  return BY_NAME.get(name);
}

/** The KServe v2 datatype of an onnxruntime tensor type, if KServe v2 can carry it. */
export function datatypeOfOrt(type: string): Datatype | undefined {
  return BY_ORT.get(type);
}

/** The names of typed-contents lists, as the wire calls them (for messages a client can act on). */
export const CONTENTS_WIRE_NAMES: Readonly<Record<ContentsField, string>> = {
  boolContents: 'bool_contents',
  intContents: 'int_contents',
  int64Contents: 'int64_contents',
  uintContents: 'uint_contents',
  uint64Contents: 'uint64_contents',
  fp32Contents: 'fp32_contents',
  fp64Contents: 'fp64_contents',
  bytesContents: 'bytes_contents',
};
