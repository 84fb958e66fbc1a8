import { invalidArgument } from '../../src/errors';

/**
 * KServe v2 BYTES tensors in `raw_input_contents` / `raw_output_contents`: each element is a 4-byte
 * little-endian unsigned length followed by that many bytes, elements back to back.
 */

const LENGTH_PREFIX_BYTES = 4;

/** Encodes BYTES elements into one raw contents buffer. */
export function encodeRawBytes(elements: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const element of elements) total += LENGTH_PREFIX_BYTES + element.length;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const element of elements) {
    offset = out.writeUInt32LE(element.length, offset);
    out.set(element, offset);
    offset += element.length;
  }
  return out;
}

/**
 * Decodes a raw BYTES buffer into its elements (views into `raw`, not copies). Throws INVALID_ARGUMENT naming
 * `tensorName` when a length prefix is cut off or claims more bytes than are left.
 */
export function decodeRawBytes(raw: Uint8Array, tensorName: string): Buffer[] {
  const buffer = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const elements: Buffer[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    if (buffer.length - offset < LENGTH_PREFIX_BYTES) {
      throw invalidArgument(`input tensor "${tensorName}": raw BYTES contents end inside a length prefix at byte ${offset}`);
    }
    const length = buffer.readUInt32LE(offset);
    offset += LENGTH_PREFIX_BYTES;
    if (length > buffer.length - offset) {
      throw invalidArgument(`input tensor "${tensorName}": raw BYTES element ${elements.length} claims ${length} bytes `
        + `but only ${buffer.length - offset} remain`);
    }
    elements.push(buffer.subarray(offset, offset + length));
    offset += length;
  }
  return elements;
}
