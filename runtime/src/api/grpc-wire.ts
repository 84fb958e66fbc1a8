import { status } from '@grpc/grpc-js';
import type { IncomingHeaders, OutgoingHeaders, ServerStream } from '../h2/server';

/**
 * The few pieces of the gRPC-over-HTTP/2 wire format the front door needs: message framing, status trailers,
 * timeouts and metadata values. Pure functions, apart from `respondWithStatus`, which writes one response.
 */

export const GRPC_CONTENT_TYPE = 'application/grpc';
const FRAME_HEADER = 5;

/** Prefixes a message with gRPC's 5-byte header (uncompressed). */
export function frameMessage(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, FRAME_HEADER);
  return frame;
}

export type FrameResult =
  | { readonly kind: 'message'; readonly message: Uint8Array; readonly rest: Buffer }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly code: status; readonly message: string };

/** Reads the first length-prefixed message from `buffer`, if it is complete. */
export function readFrame(buffer: Buffer, maxMessageSize: number): FrameResult {
  if (buffer.length < FRAME_HEADER) return { kind: 'incomplete' };
  if (buffer[0] !== 0) {
    return buffer[0] === 1
      ? { kind: 'error', code: status.UNIMPLEMENTED, message: 'compressed messages are not supported; send uncompressed (grpc-encoding identity)' }
      : { kind: 'error', code: status.INTERNAL, message: `malformed gRPC frame: flag byte ${buffer[0]}` };
  }
  const length = buffer.readUInt32BE(1);
  if (length > maxMessageSize) {
    return { kind: 'error', code: status.RESOURCE_EXHAUSTED, message: `message of ${length} bytes exceeds the limit of ${maxMessageSize} bytes` };
  }
  if (buffer.length < FRAME_HEADER + length) return { kind: 'incomplete' };
  return { kind: 'message', message: buffer.subarray(FRAME_HEADER, FRAME_HEADER + length), rest: buffer.subarray(FRAME_HEADER + length) };
}

/** Percent-encodes a status message as gRPC requires for `grpc-message`. */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeGrpcMessage(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/** `grpc-timeout` (e.g. `100m`, `5S`) in milliseconds; undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return undefined;
  return Number(match[1]) * TIMEOUT_UNITS[match[2]];
}

/** Formats milliseconds as a `grpc-timeout` value (at most 8 digits). */
export function formatGrpcTimeout(ms: number): string {
  const value = Math.max(0, Math.ceil(ms));
  return value < 1e8 ? `${value}m` : `${Math.ceil(value / 1000)}S`;
}

/** One metadata value: plain for ASCII keys, base64-decoded UTF-8 for `-bin` keys. */
export function headerText(headers: IncomingHeaders, name: string): string | undefined {
  const value = headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return name.endsWith('-bin') ? Buffer.from(first, 'base64').toString('utf8') : first;
}

/**
 * Answers a call that has not responded yet with a status and no message ("trailers-only"). Returns false when the
 * stream is closed or already responded (then the status must travel in trailers).
 */
export function respondWithStatus(stream: ServerStream, code: status, message: string, extra: OutgoingHeaders = {}): boolean {
  if (stream.closed || stream.headersSent) return false;
  stream.respond({
    ':status': 200,
    'content-type': GRPC_CONTENT_TYPE,
    'grpc-status': String(code),
    'grpc-message': encodeGrpcMessage(message),
    ...extra,
  }, true);
  return true;
}
