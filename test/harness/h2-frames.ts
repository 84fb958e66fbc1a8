/** Raw HTTP/2 for tests that must send what a well-behaved client never would (node's client enforces limits itself). */

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Frame types (RFC 9113 §6) the tests use. */
export const FrameType = { DATA: 0x0, HEADERS: 0x1, SETTINGS: 0x4, GOAWAY: 0x7 } as const;

/** HPACK literal header field without indexing, new name (RFC 7541 §6.2.2), for names and values under 127 bytes. */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

export interface ReadFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** Splits bytes received from a server into whole frames (a partial frame at the end is left out). */
export function parseFrames(bytes: Buffer): ReadFrame[] {
  const frames: ReadFrame[] = [];
  for (let at = 0; at + 9 <= bytes.length;) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    // The stream id is 31 bits after a reserved bit.
    const streamId = bytes.readUInt32BE(at + 5) % 0x8000_0000;
    frames.push({ type: bytes[at + 3], flags: bytes[at + 4], streamId, payload: bytes.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return frames;
}
