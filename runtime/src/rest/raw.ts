import { Datatype, TensorElements, datatypeSpec } from './datatypes';
import { encodeRawBytes } from '../../servers/shared/bytes-tensor';
import { invalidArgument } from '../errors';

/**
 * KServe v2 raw tensor contents (`raw_input_contents` / `raw_output_contents`): elements back to back, little-endian,
 * BOOL as one byte, BYTES as a 4-byte little-endian length followed by the bytes. Pure; no I/O.
 */

const LENGTH_PREFIX = 4;
const FP16_MAX = 65504;
const FP16_EXPONENT_BIAS = 15;
const FP16_MANTISSA = 1024;

/** Encodes a tensor's elements (already validated for `datatype`) as raw contents. */
export function encodeRaw(datatype: Datatype, elements: TensorElements, where: string): Buffer {
  if (datatype === 'BYTES') return encodeRawBytes(elements as Buffer[]);
  const size = datatypeSpec(datatype).size;
  const out = Buffer.alloc(elements.length * size);
  for (let i = 0; i < elements.length; i++) {
    const value = elements[i] as number | boolean;
    const offset = i * size;
    switch (datatype) {
      case 'BOOL': out.writeUInt8(value ? 1 : 0, offset); break;
      case 'UINT8': out.writeUInt8(value as number, offset); break;
      case 'UINT16': out.writeUInt16LE(value as number, offset); break;
      case 'UINT32': out.writeUInt32LE(value as number, offset); break;
      case 'UINT64': out.writeBigUInt64LE(BigInt(value as number), offset); break;
      case 'INT8': out.writeInt8(value as number, offset); break;
      case 'INT16': out.writeInt16LE(value as number, offset); break;
      case 'INT32': out.writeInt32LE(value as number, offset); break;
      case 'INT64': out.writeBigInt64LE(BigInt(value as number), offset); break;
      case 'FP16': out.writeUInt16LE(fp16Bits(value as number, `${where} element ${i}`), offset); break;
      case 'FP32': out.writeFloatLE(value as number, offset); break;
      case 'FP64': out.writeDoubleLE(value as number, offset); break;
    }
  }
  return out;
}

/**
 * Decodes raw contents of `datatype`. Throws naming `where` (the tensor) when the byte count does not divide into
 * elements, a BYTES length prefix runs past the end, or a 64-bit integer is beyond ±(2^53 - 1), which a JSON number
 * cannot carry exactly.
 */
export function decodeRaw(datatype: Datatype, raw: Uint8Array, where: string): TensorElements {
  const buffer = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (datatype === 'BYTES') return decodeRawBytes(buffer, where);
  const size = datatypeSpec(datatype).size;
  if (buffer.length % size !== 0) {
    throw invalidArgument(`${where}: raw contents of ${buffer.length} bytes are not a whole number of ${datatype} elements (${size} bytes each)`);
  }
  const count = buffer.length / size;
  if (datatype === 'BOOL') {
    const bools: boolean[] = new Array<boolean>(count);
    for (let i = 0; i < count; i++) bools[i] = buffer[i] !== 0;
    return bools;
  }
  const numbers: number[] = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const offset = i * size;
    switch (datatype) {
      case 'UINT8': numbers[i] = buffer.readUInt8(offset); break;
      case 'UINT16': numbers[i] = buffer.readUInt16LE(offset); break;
      case 'UINT32': numbers[i] = buffer.readUInt32LE(offset); break;
      case 'UINT64': numbers[i] = safeInteger(buffer.readBigUInt64LE(offset), datatype, `${where} element ${i}`); break;
      case 'INT8': numbers[i] = buffer.readInt8(offset); break;
      case 'INT16': numbers[i] = buffer.readInt16LE(offset); break;
      case 'INT32': numbers[i] = buffer.readInt32LE(offset); break;
      case 'INT64': numbers[i] = safeInteger(buffer.readBigInt64LE(offset), datatype, `${where} element ${i}`); break;
      case 'FP16': numbers[i] = fp16Value(buffer.readUInt16LE(offset)); break;
      case 'FP32': numbers[i] = buffer.readFloatLE(offset); break;
      case 'FP64': numbers[i] = buffer.readDoubleLE(offset); break;
    }
  }
  return numbers;
}

function safeInteger(value: bigint, datatype: Datatype, where: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw invalidArgument(`${where} is ${value}, beyond ±(2^53 - 1): a JSON number cannot carry such a ${datatype} value exactly, `
      + 'and it is refused rather than rounded');
  }
  return Number(value);
}

function decodeRawBytes(buffer: Buffer, where: string): Buffer[] {
  const elements: Buffer[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    if (buffer.length - offset < LENGTH_PREFIX) {
      throw invalidArgument(`${where}: raw BYTES contents end inside a length prefix at byte ${offset}`);
    }
    const length = buffer.readUInt32LE(offset);
    offset += LENGTH_PREFIX;
    if (length > buffer.length - offset) {
      throw invalidArgument(`${where}: raw BYTES element ${elements.length} claims ${length} bytes but only ${buffer.length - offset} remain`);
    }
    elements.push(buffer.subarray(offset, offset + length));
    offset += length;
  }
  return elements;
}

/** IEEE 754 half precision → number. Arithmetic rather than bit operations, as the lint rules ask. */
export function fp16Value(bits: number): number {
  const sign = bits >= 0x8000 ? -1 : 1;
  const exponent = Math.floor((bits % 0x8000) / FP16_MANTISSA);
  const mantissa = bits % FP16_MANTISSA;
  if (exponent === 0) return sign * mantissa * 2 ** (1 - FP16_EXPONENT_BIAS - 10);
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / FP16_MANTISSA) * 2 ** (exponent - FP16_EXPONENT_BIAS);
}

/**
 * number → IEEE 754 half precision bits, rounding to nearest even. A finite value that would round to infinity
 * (|x| ≥ 65520) is refused naming `where` rather than silently turned into Infinity.
 */
export function fp16Bits(value: number, where: string): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude === Infinity) return sign + 0x7c00;
  const overflow = () => invalidArgument(`${where} is ${value}, beyond the largest FP16 value (${FP16_MAX})`);
  if (magnitude < 2 ** (1 - FP16_EXPONENT_BIAS)) {
    // Subnormal; a result of 1024 is exactly the smallest normal's bit pattern, so no special case is needed.
    return sign + roundHalfEven(magnitude / 2 ** (1 - FP16_EXPONENT_BIAS - 10));
  }
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent -= 1;
  else if (2 ** (exponent + 1) <= magnitude) exponent += 1;
  let mantissa = roundHalfEven((magnitude / 2 ** exponent - 1) * FP16_MANTISSA);
  if (mantissa === FP16_MANTISSA) {
    mantissa = 0;
    exponent += 1;
  }
  if (exponent > FP16_EXPONENT_BIAS) throw overflow();
  return sign + (exponent + FP16_EXPONENT_BIAS) * FP16_MANTISSA + mantissa;
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
