/**
 * Reading and replacing one string field of an encoded protobuf message, addressed by a path of field numbers
 * (upstream's idExtractionPath / idInjectionPath), without the message's schema. All but the last field of the
 * path must be embedded messages; the last must be a string. Pure functions over bytes.
 */

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

export class ProtobufPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtobufPathError';
  }
}

interface Field {
  readonly number: number;
  readonly wireType: number;
  /** Start of the field's key. */
  readonly start: number;
  /** Start and end of the payload (for length-delimited fields, without the length prefix). */
  readonly valueStart: number;
  readonly end: number;
}

function readVarint(bytes: Uint8Array, offset: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  let pos = offset;
  for (;;) {
    if (pos >= bytes.length) throw new ProtobufPathError('truncated varint');
    const byte = bytes[pos++];
    // Field numbers and lengths fit in 32 bits; larger varints (values) only need skipping.
    if (shift < 35) value += (byte % 0x80) * 2 ** shift;
    if (byte < 0x80) return [value, pos];
    shift += 7;
    if (shift > 70) throw new ProtobufPathError('varint too long');
  }
}

function* fields(bytes: Uint8Array, start = 0, end = bytes.length): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    const [key, afterKey] = readVarint(bytes, pos);
    const wireType = key % 8;
    const number = Math.floor(key / 8);
    if (number === 0) throw new ProtobufPathError('field number 0');
    let valueStart = afterKey;
    let next: number;
    switch (wireType) {
      case WIRE_VARINT: next = readVarint(bytes, afterKey)[1]; break;
      case WIRE_I64: next = afterKey + 8; break;
      case WIRE_I32: next = afterKey + 4; break;
      case WIRE_LEN: {
        const [length, afterLength] = readVarint(bytes, afterKey);
        valueStart = afterLength;
        next = afterLength + length;
        break;
      }
      default: throw new ProtobufPathError(`unsupported wire type ${wireType}`);
    }
    if (next > end) throw new ProtobufPathError('truncated field');
    yield { number, wireType, start: fieldStart, valueStart, end: next };
    pos = next;
  }
}

/** The last occurrence of `number` (protobuf's rule for non-repeated fields) within [start, end). */
function lastField(bytes: Uint8Array, number: number, start: number, end: number): Field | undefined {
  let found: Field | undefined;
  for (const field of fields(bytes, start, end)) if (field.number === number) found = field;
  if (found && found.wireType !== WIRE_LEN) throw new ProtobufPathError(`field ${number} is not a string or message`);
  return found;
}

/** The string at `path`, or undefined when a field on the path is absent. Throws ProtobufPathError on malformed bytes. */
export function extractString(message: Uint8Array, path: readonly number[]): string | undefined {
  let start = 0;
  let end = message.length;
  let field: Field | undefined;
  for (const number of path) {
    field = lastField(message, number, start, end);
    if (!field) return undefined;
    start = field.valueStart;
    end = field.end;
  }
  return field ? Buffer.from(message.buffer, message.byteOffset + start, end - start).toString('utf8') : undefined;
}

function encodeVarint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) + 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function lengthDelimited(number: number, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...encodeVarint(number * 8 + WIRE_LEN), ...encodeVarint(payload.length)]), payload]);
}

/**
 * A copy of `message` whose string at `path` is `value`; missing messages on the path are created. Occurrences of the
 * path's fields are dropped and one is appended, which protobuf parsers read as the field's value.
 */
export function spliceString(message: Uint8Array, path: readonly number[], value: string): Buffer {
  if (path.length === 0) throw new ProtobufPathError('empty path');
  const [number, ...rest] = path;
  const kept: Uint8Array[] = [];
  let inner: Uint8Array = new Uint8Array(0);
  for (const field of fields(message)) {
    if (field.number === number) {
      if (field.wireType !== WIRE_LEN) throw new ProtobufPathError(`field ${number} is not a string or message`);
      inner = message.subarray(field.valueStart, field.end);
    } else {
      kept.push(message.subarray(field.start, field.end));
    }
  }
  const payload = rest.length === 0 ? Buffer.from(value, 'utf8') : spliceString(inner, rest, value);
  return Buffer.concat([...kept, lengthDelimited(number, payload)]);
}
