/* eslint-disable no-bitwise -- HTTP/2 frames and HPACK are bit fields */
/** HTTP/2 framing (RFC 9113 §4, §6): the frame types, flags, settings and error codes the client and server use. */

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const CONNECTION_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_LENGTH = 9;
/** Every peer must accept frames of this size; larger only after it says so. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const DEFAULT_WINDOW_SIZE = 65_535;
export const MAX_WINDOW_SIZE = 2 ** 31 - 1;

/** One frame: its 9-byte header followed by `payload`, as a single buffer. */
export function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const length = payload ? payload.length : 0;
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + length);
  writeFrameHeader(out, 0, type, flags, streamId, length);
  if (payload) payload.copy(out, FRAME_HEADER_LENGTH);
  return out;
}

export function writeFrameHeader(out: Buffer, offset: number, type: number, flags: number, streamId: number, length: number): void {
  out[offset] = (length >>> 16) & 0xff;
  out[offset + 1] = (length >>> 8) & 0xff;
  out[offset + 2] = length & 0xff;
  out[offset + 3] = type;
  out[offset + 4] = flags;
  out.writeUInt32BE(streamId, offset + 5);
}

export function settingsPayload(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const out = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    out.writeUInt16BE(id, 6 * i);
    out.writeUInt32BE(value, 6 * i + 2);
  });
  return out;
}

export function uint32Payload(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * values.length);
  values.forEach((v, i) => out.writeUInt32BE(v, 4 * i));
  return out;
}

/** A frame as read: `payload` is a view into the chunk read from the socket (node never reuses it, so it may be kept). */
export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/**
 * Splits a byte stream into frames. Frames longer than `maxFrameSize` (what this side announced) are a connection
 * error the caller reports; `onFrame` sees each frame once, in order.
 */
export class FrameReader {
  private pending: Buffer | undefined;

  constructor(private readonly maxFrameSize: number, private readonly onFrame: (f: Frame) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let pos = 0;
    while (buf.length - pos >= FRAME_HEADER_LENGTH) {
      const length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2];
      if (length > this.maxFrameSize) throw new FrameSizeError(`frame of ${length} bytes exceeds the announced maximum of ${this.maxFrameSize}`);
      const end = pos + FRAME_HEADER_LENGTH + length;
      if (end > buf.length) break;
      this.onFrame({
        type: buf[pos + 3],
        flags: buf[pos + 4],
        streamId: buf.readUInt32BE(pos + 5) & 0x7fffffff,
        payload: buf.subarray(pos + FRAME_HEADER_LENGTH, end),
      });
      pos = end;
    }
    if (pos < buf.length) this.pending = buf.subarray(pos);
  }
}

export class FrameSizeError extends Error {}

/** The payload without padding, for frames whose PADDED flag is set (pad length byte first, padding last). */
export function unpad(f: Frame): Buffer {
  if ((f.flags & Flag.PADDED) === 0) return f.payload;
  const padLength = f.payload[0];
  if (f.payload.length === 0 || padLength >= f.payload.length) throw new FrameSizeError('padding longer than the frame');
  return f.payload.subarray(1, f.payload.length - padLength);
}
