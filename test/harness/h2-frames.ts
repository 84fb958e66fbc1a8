/** Raw HTTP/2 for tests that must send what a well-behaved client never would (node's client enforces limits itself). */

export { CONNECTION_PREFACE as CLIENT_PREFACE, FrameType, frame } from '../../runtime/src/h2/frames';

/** HPACK literal header field without indexing, new name (RFC 7541 §6.2.2), for names and values under 127 bytes. */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
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
