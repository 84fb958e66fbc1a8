import { isUtf8 } from 'node:buffer';
import { InferTensorContents } from '../../../proto/gen/grpc_predict_v2';
import { invalidArgument } from '../errors';

/**
 * The KServe v2 tensor datatypes and how one element of each travels: as a JSON value, in the typed
 * InferTensorContents list, and in raw little-endian bytes. Pure; no I/O.
 */

export const DATATYPES = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES',
] as const;
export type Datatype = typeof DATATYPES[number];

/** A tensor's elements, flattened in row-major order. */
export type TensorElements = boolean[] | number[] | Buffer[];

/** A JSON value as the REST API reads and writes tensor elements. */
export type JsonElement = boolean | number | string | { b64: string };

type ContentsList = keyof InferTensorContents;

interface DatatypeSpec {
  readonly kind: 'bool' | 'int' | 'float' | 'bytes';
  /** The InferTensorContents list for this type; FP16 has none and travels only as raw contents. */
  readonly field: ContentsList | undefined;
  /** Bytes per element in raw contents; 0 for BYTES (length-prefixed). */
  readonly size: number;
  readonly min: number;
  readonly max: number;
}

const { MAX_SAFE_INTEGER, MIN_SAFE_INTEGER } = Number;
const int = (field: ContentsList, size: number, min: number, max: number): DatatypeSpec => ({ kind: 'int', field, size, min, max });
const float = (field: ContentsList | undefined, size: number): DatatypeSpec => ({ kind: 'float', field, size, min: -Infinity, max: Infinity });

const SPECS: Readonly<Record<Datatype, DatatypeSpec>> = {
  BOOL: { kind: 'bool', field: 'boolContents', size: 1, min: 0, max: 1 },
  UINT8: int('uintContents', 1, 0, 0xff),
  UINT16: int('uintContents', 2, 0, 0xffff),
  UINT32: int('uintContents', 4, 0, 0xffffffff),
  // 64-bit integers are JS numbers here (ts-proto forceLong=number), so they stop at ±(2^53 - 1).
  UINT64: int('uint64Contents', 8, 0, MAX_SAFE_INTEGER),
  INT8: int('intContents', 1, -0x80, 0x7f),
  INT16: int('intContents', 2, -0x8000, 0x7fff),
  INT32: int('intContents', 4, -0x80000000, 0x7fffffff),
  INT64: int('int64Contents', 8, MIN_SAFE_INTEGER, MAX_SAFE_INTEGER),
  FP16: float(undefined, 2),
  FP32: float('fp32Contents', 4),
  FP64: float('fp64Contents', 8),
  BYTES: { kind: 'bytes', field: 'bytesContents', size: 0, min: 0, max: 0 },
};

export function isDatatype(value: string): value is Datatype {
  return Object.prototype.hasOwnProperty.call(SPECS, value);
}

export function datatypeSpec(datatype: Datatype): DatatypeSpec {
  return SPECS[datatype];
}

/** Puts elements into the contents list their datatype uses. FP16 has none: callers send it as raw contents. */
export function toContents(datatype: Datatype, elements: TensorElements): InferTensorContents {
  const field = SPECS[datatype].field;
  if (field === undefined) throw invalidArgument(`${datatype} tensors travel only as raw contents`);
  const contents = InferTensorContents.fromPartial({});
  (contents as Record<ContentsList, TensorElements>)[field] = elements;
  return contents;
}

/** The elements of a datatype's contents list (empty when the tensor came without contents). */
export function fromContents(datatype: Datatype, contents: InferTensorContents | undefined): TensorElements {
  const field = SPECS[datatype].field;
  if (field === undefined || contents === undefined) return [];
  return contents[field];
}

const NON_FINITE: Readonly<Record<string, number>> = { 'NaN': NaN, 'Infinity': Infinity, '-Infinity': -Infinity };
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/**
 * Reads one JSON element of a tensor of `datatype`. `where` names the tensor and element for the error, which says
 * what a valid element looks like. Integers beyond ±(2^53 - 1) are refused: JSON parsing has already rounded them.
 */
export function elementFromJson(datatype: Datatype, value: unknown, where: string): boolean | number | Buffer {
  const spec = SPECS[datatype];
  switch (spec.kind) {
    case 'bool':
      if (typeof value === 'boolean') return value;
      throw invalidArgument(`${where} is ${describe(value)}; ${datatype} elements are true or false`);
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        throw invalidArgument(`${where} is ${describe(value)}; ${datatype} elements are integers`);
      }
      if (spec.size === 8 && !Number.isSafeInteger(value)) {
        throw invalidArgument(`${where} is ${value}, beyond ±(2^53 - 1): a JSON number cannot carry such a ${datatype} value exactly, `
          + 'and it is refused rather than rounded');
      }
      if (value < spec.min || value > spec.max) {
        throw invalidArgument(`${where} is ${value}, outside the ${datatype} range ${spec.min}..${spec.max}`);
      }
      return value;
    case 'float': {
      const number = typeof value === 'string' ? NON_FINITE[value] : value;
      if (typeof number !== 'number') {
        throw invalidArgument(`${where} is ${describe(value)}; ${datatype} elements are numbers (or "NaN", "Infinity", "-Infinity")`);
      }
      if (datatype === 'FP32' && Number.isFinite(number) && !Number.isFinite(Math.fround(number))) {
        throw invalidArgument(`${where} is ${number}, beyond the largest FP32 value (3.4028234663852886e38)`);
      }
      return number;
    }
    case 'bytes':
      return bytesFromJson(value, where);
  }
}

function bytesFromJson(value: unknown, where: string): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const b64 = (value as { b64?: unknown }).b64;
    if (keys.length === 1 && typeof b64 === 'string') {
      if (!BASE64.test(b64)) throw invalidArgument(`${where}: "b64" holds ${describe(b64)}, which is not valid base64`);
      return Buffer.from(b64, 'base64');
    }
  }
  throw invalidArgument(`${where} is ${describe(value)}; BYTES elements are strings (UTF-8) or {"b64": "<base64>"} objects`);
}

/** One element as JSON: non-finite floats as strings, BYTES as a string when valid UTF-8, else {"b64": …}. */
export function elementToJson(value: boolean | number | Buffer): JsonElement {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  return isUtf8(value) ? value.toString('utf8') : { b64: value.toString('base64') };
}
