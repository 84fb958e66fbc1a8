/* eslint-disable no-bitwise -- HTTP/2 frames and HPACK are bit fields */
import { huffmanDecode } from './huffman';

/**
 * HPACK (RFC 7541) for the mesh's HTTP/2 client and server. Decoding is complete (static and dynamic table, Huffman);
 * encoding never indexes and never Huffman-codes, so the peer's decoder state never depends on ours and an encoded
 * block can be built without any connection state.
 */

/** The static table, index 1 first. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Static index of each name's first entry, for encoding names by reference. */
const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

/** Per entry, the table counts its name and value octets plus this much. */
const ENTRY_OVERHEAD = 32;

export class HpackError extends Error {}

/**
 * The block decoded to more than the announced header list size. Thrown only once the whole block was read, so the
 * dynamic table stays in step with the peer's and the connection can go on: this is a stream error.
 */
export class HeaderListSizeError extends HpackError {}

/** Decoded header fields in the order received; a name may repeat. */
export type HeaderList = Array<[name: string, value: string]>;

/** Header fields by name; a repeated name gives an array. */
export type HeaderRecord = Record<string, string | string[]>;

export function toHeaderRecord(list: HeaderList): HeaderRecord {
  const out: HeaderRecord = {};
  for (const [name, value] of list) {
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}

export class HpackDecoder {
  /** Newest entry first, as HPACK numbers them. */
  private readonly dynamic: Array<[string, string]> = [];
  private dynamicSize = 0;
  private maxSize: number;

  /** `maxTableSize` is the SETTINGS_HEADER_TABLE_SIZE this side announced (the peer may not exceed it). */
  constructor(private readonly maxTableSize: number, private readonly maxListSize: number) {
    this.maxSize = maxTableSize;
  }

  decode(block: Buffer): HeaderList {
    const fields: HeaderList = [];
    let listSize = 0;
    let pos = 0;
    let fieldSeen = false;
    let tooLarge = false;
    const integer = (prefixBits: number): number => {
      if (pos >= block.length) throw new HpackError('HPACK: truncated integer');
      const mask = (1 << prefixBits) - 1;
      let value = block[pos++] & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (pos >= block.length) throw new HpackError('HPACK: truncated integer');
        const byte = block[pos++];
        value += (byte & 0x7f) * 2 ** shift;
        shift += 7;
        if ((byte & 0x80) === 0) break;
        if (shift > 28) throw new HpackError('HPACK: integer too large');
      }
      return value;
    };
    const string = (): string => {
      if (pos >= block.length) throw new HpackError('HPACK: truncated string');
      const huffman = (block[pos] & 0x80) !== 0;
      const length = integer(7);
      if (pos + length > block.length) throw new HpackError('HPACK: truncated string');
      const start = pos;
      pos += length;
      try {
        return huffman ? huffmanDecode(block, start, pos) : block.toString('latin1', start, pos);
      } catch (err) {
        throw new HpackError((err as Error).message);
      }
    };
    const add = (name: string, value: string) => {
      fieldSeen = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > this.maxListSize) tooLarge = true;
      if (!tooLarge) fields.push([name, value]);
    };

    while (pos < block.length) {
      const first = block[pos];
      if (first & 0x80) {
        const [name, value] = this.entry(integer(7));
        add(name, value);
      } else if (first & 0x40) {
        const index = integer(6);
        const name = index === 0 ? string() : this.entry(index)[0];
        const value = string();
        this.insert(name, value);
        add(name, value);
      } else if (first & 0x20) {
        // A size update is only allowed before the block's first field.
        if (fieldSeen) throw new HpackError('HPACK: dynamic table size update after a header field');
        const size = integer(5);
        if (size > this.maxTableSize) throw new HpackError(`HPACK: table size ${size} above the announced ${this.maxTableSize}`);
        this.maxSize = size;
        this.evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001): same layout, nothing is stored.
        const index = integer(4);
        const name = index === 0 ? string() : this.entry(index)[0];
        add(name, string());
      }
    }
    if (tooLarge) throw new HeaderListSizeError(`header list larger than ${this.maxListSize} bytes`);
    return fields;
  }

  private entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('HPACK: index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const entry = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!entry) throw new HpackError(`HPACK: index ${index} beyond the tables`);
    return entry;
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.evict(size);
    // An entry larger than the whole table empties it and is not stored.
    if (size <= this.maxSize) {
      this.dynamic.unshift([name, value]);
      this.dynamicSize += size;
    }
  }

  /** Evicts the oldest entries until `incoming` more octets fit. */
  private evict(incoming: number): void {
    while (this.dynamic.length > 0 && this.dynamicSize + incoming > this.maxSize) {
      const [name, value] = this.dynamic.pop()!;
      this.dynamicSize -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

/** Header names HTTP/2 forbids (connection-specific); they are dropped rather than sent. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/** Writes an HPACK integer with a `prefixBits` prefix whose other bits are `pattern` at `pos`; returns the next position. */
function writeInteger(out: Buffer, pos: number, value: number, prefixBits: number, pattern: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos] = pattern | value;
    return pos + 1;
  }
  out[pos++] = pattern | max;
  let rest = value - max;
  while (rest >= 0x80) {
    out[pos++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[pos] = rest;
  return pos + 1;
}

/** An integer takes at most this many bytes for any length below 2^28. */
const MAX_INTEGER_BYTES = 5;

/** The encoded start of a literal field for each name seen: a name repeats on every call, its bytes need not. */
const namePrefixes = new Map<string, Buffer>();
const MAX_CACHED_NAMES = 1_000;

function namePrefix(name: string): Buffer {
  let prefix = namePrefixes.get(name);
  if (prefix) return prefix;
  const index = STATIC_NAME_INDEX.get(name);
  const out = Buffer.allocUnsafe(1 + MAX_INTEGER_BYTES + name.length);
  let pos: number;
  if (index !== undefined) {
    pos = writeInteger(out, 0, index, 4, 0);
  } else {
    out[0] = 0;
    pos = writeInteger(out, 1, name.length, 7, 0);
    pos += out.write(name, pos, 'latin1');
  }
  prefix = out.subarray(0, pos);
  if (namePrefixes.size < MAX_CACHED_NAMES) namePrefixes.set(name, prefix);
  return prefix;
}

/**
 * Encodes `fields` (pseudo-headers must come first; names lower-case) as literals without indexing, names by static
 * reference where the static table has them. Values are octets (latin1), as received. `lead`, an encoded block, goes
 * first.
 */
export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>, lead?: Buffer): Buffer {
  let size = lead ? lead.length : 0;
  const prefixes: Array<Buffer | undefined> = [];
  for (const [name, value] of fields) {
    if (CONNECTION_SPECIFIC.has(name) || (name === 'te' && value !== 'trailers')) {
      prefixes.push(undefined);
      continue;
    }
    const prefix = namePrefix(name);
    prefixes.push(prefix);
    size += prefix.length + MAX_INTEGER_BYTES + value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = lead ? lead.copy(out, 0) : 0;
  fields.forEach(([, value], i) => {
    const prefix = prefixes[i];
    if (!prefix) return;
    pos += prefix.copy(out, pos);
    pos = writeInteger(out, pos, value.length, 7, 0);
    pos += out.write(value, pos, 'latin1');
  });
  return out.subarray(0, pos);
}
