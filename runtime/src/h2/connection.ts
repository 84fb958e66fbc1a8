/* eslint-disable no-bitwise -- HTTP/2 frames and HPACK are bit fields */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW_SIZE, ErrorCode, FRAME_HEADER_LENGTH, Flag, Frame, FrameSizeError, FrameType, MAX_WINDOW_SIZE,
  Setting, frame, unpad, writeFrameHeader,
} from './frames';
import { HpackError } from './hpack';

/**
 * What the mesh's HTTP/2 client and server share: the sending half of a stream (queued body bytes under the peer's
 * windows), writing each turn's frames in one system call, header blocks split over CONTINUATION frames, the peer's
 * settings and WINDOW_UPDATEs, and running stream handlers so that one that throws costs only its stream.
 */

/** Body bytes queued per stream before `write` asks the caller to wait. */
const HIGH_WATER_MARK = 1 << 20;
/** Bytes in the socket's own buffer past which DATA waits for it to drain: a peer that stopped reading TCP. */
const SOCKET_HIGH_WATER_MARK = 4 << 20;
/** The largest DATA frame sent, whatever the peer allows: the socket's buffer then stays under the mark plus one. */
const MAX_DATA_FRAME = 1 << 20;
/**
 * Unread output past which any further frame from the peer ends the connection (ENHANCE_YOUR_CALM): DATA stops at the
 * mark above, so only a peer that keeps sending frames that need an answer (PING, SETTINGS, bad streams) and does not
 * read the answers gets here.
 */
const FLOOD_LIMIT = 16 << 20;

/** A connection error: GOAWAY with `code`, every stream ends. */
export class ConnectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** The HTTP/2 error code for an error thrown while reading the peer's frames. */
export function connectionErrorCode(err: unknown): number {
  if (err instanceof ConnectionError) return err.code;
  if (err instanceof FrameSizeError) return ErrorCode.FRAME_SIZE_ERROR;
  if (err instanceof HpackError) return ErrorCode.COMPRESSION_ERROR;
  return ErrorCode.PROTOCOL_ERROR;
}

/** Payload sizes fixed by the protocol (GOAWAY: at least this, followed by debug data). */
const FIXED_PAYLOAD_SIZE: Partial<Record<number, number>> = {
  [FrameType.PRIORITY]: 5, [FrameType.RST_STREAM]: 4, [FrameType.PING]: 8, [FrameType.GOAWAY]: 8, [FrameType.WINDOW_UPDATE]: 4,
};

/** What the connection keeps per stream: the sending half, and `pause` for the receiving half. */
export abstract class Http2Stream {
  /** 0 until a client stream's HEADERS are sent. */
  id = 0;
  /** @internal What the peer lets this side send on the stream. */ sendWindow: number;
  /** @internal */ readonly queue: Buffer[] = [];
  /** @internal */ queuedBytes = 0;
  /** @internal */ endQueued = false;
  /** @internal END_STREAM sent. */ localEnded = false;
  /** @internal END_STREAM received. */ remoteEnded = false;
  /** @internal */ needsDrain = false;
  /** @internal Received bytes are not credited back to the peer: flow control holds it back. */ paused = false;
  protected isClosed = false;
  /** `drain`: the queued bytes fell below half the high-water mark after a write was refused. */
  abstract readonly handlers: { drain(): void };

  constructor(sendWindow: number) {
    this.sendWindow = sendWindow;
  }

  /** Over: ended, reset, or its connection is gone. Writes are ignored from then on. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Stops giving the peer window for this stream until `resume`: HTTP/2 flow control then holds the sender back. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.creditHeldBack();
  }

  /** Gives the peer the window held back while paused. */
  protected abstract creditHeldBack(): void;

  /** @internal */
  markClosed(): void {
    this.isClosed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  /** Queues body bytes; false once more than the high-water mark waits. */
  protected enqueue(chunk: Buffer): boolean {
    if (chunk.length > 0) {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
    }
    if (this.queuedBytes > HIGH_WATER_MARK) this.needsDrain = true;
    return !this.needsDrain;
  }
}

export abstract class Http2Connection<S extends Http2Stream> {
  /** Open streams by id. */
  protected readonly streams = new Map<number, S>();
  /** The connection is over: no more frames go out. */
  protected destroyed = false;
  private readonly closeListeners: Array<() => void> = [];
  /** Streams with frames to write at the end of this turn. */
  protected readonly dirty = new Set<S>();
  private flushScheduled = false;
  protected peerInitialWindow = DEFAULT_WINDOW_SIZE;
  protected peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  /** What the peer lets this side send on the whole connection. */
  protected sendWindow = DEFAULT_WINDOW_SIZE;
  /** A header block spread over HEADERS + CONTINUATION frames. */
  private headerBlock: { streamId: number; flags: number; parts: Buffer[]; size: number } | undefined;
  /** The largest header block (all frames) this side takes. */
  protected abstract readonly maxHeaderBlockSize: number;
  /** The reset code of a stream whose handler threw. */
  protected abstract readonly handlerFailureCode: number;

  constructor(protected readonly socket: Socket | TLSSocket) {
    socket.setNoDelay?.(true);
    socket.on('drain', () => {
      for (const stream of this.streams.values()) if (stream.queue.length > 0) this.schedule(stream);
    });
  }

  /** Writes what `stream` has to send (called once per turn for each scheduled stream). */
  protected abstract send(stream: S): void;
  /** A complete header block for `streamId`; `flags` are those of its HEADERS frame. */
  protected abstract onHeaderBlock(streamId: number, flags: number, block: Buffer): void;
  /** Resets `stream` after a stream error of the peer's (or a handler's failure). */
  protected abstract resetStream(stream: S, code: number, message: string): void;

  /** Runs `listener` once the connection is over (at once if it is). */
  onClose(listener: () => void): void {
    if (this.destroyed) listener();
    else this.closeListeners.push(listener);
  }

  /** Ends the socket after what is queued and `last`; a peer that has not closed its side within a second is cut off. */
  protected endSocket(last?: Buffer): void {
    if (last) this.socket.end(last);
    else this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  protected notifyClosed(): void {
    for (const listener of this.closeListeners.splice(0)) listener();
  }

  /** @internal Marks `stream` as having frames to send this turn. */
  schedule(stream: S): void {
    if (stream.closed) return;
    this.dirty.add(stream);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.destroyed) return;
    this.socket.cork();
    for (const stream of this.dirty) {
      this.dirty.delete(stream);
      if (!stream.closed) this.send(stream);
    }
    this.socket.uncork();
  }

  /** A header block as HEADERS and, beyond the peer's frame size, CONTINUATION frames. */
  protected writeHeaders(streamId: number, block: Buffer, endStream: boolean): void {
    const max = this.peerMaxFrameSize;
    const first = block.subarray(0, max);
    const last = block.length <= max;
    this.socket.write(frame(FrameType.HEADERS, (endStream ? Flag.END_STREAM : 0) | (last ? Flag.END_HEADERS : 0), streamId, first));
    for (let pos = max; pos < block.length; pos += max) {
      const end = Math.min(pos + max, block.length);
      this.socket.write(frame(FrameType.CONTINUATION, end === block.length ? Flag.END_HEADERS : 0, streamId, block.subarray(pos, end)));
    }
  }

  /**
   * Writes queued body bytes as DATA frames as far as the windows (and the socket's buffer) allow, END_STREAM on the
   * last one when `endOnLast`; then tells a writer waiting for room. True when the queue is empty.
   */
  protected writeData(stream: S, endOnLast: boolean): boolean {
    while (stream.queue.length > 0) {
      const allowed = Math.min(stream.sendWindow, this.sendWindow, this.peerMaxFrameSize, MAX_DATA_FRAME);
      if (allowed <= 0 || this.socket.writableLength >= SOCKET_HIGH_WATER_MARK) break;
      const chunk = stream.queue[0];
      const take = Math.min(allowed, chunk.length);
      const piece = take === chunk.length ? chunk : chunk.subarray(0, take);
      if (take === chunk.length) stream.queue.shift(); else stream.queue[0] = chunk.subarray(take);
      stream.queuedBytes -= take;
      stream.sendWindow -= take;
      this.sendWindow -= take;
      const endStream = endOnLast && stream.queue.length === 0;
      const header = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
      writeFrameHeader(header, 0, FrameType.DATA, endStream ? Flag.END_STREAM : 0, stream.id, take);
      this.socket.write(header);
      this.socket.write(piece);
      if (endStream) stream.localEnded = true;
    }
    if (stream.needsDrain && stream.queuedBytes <= HIGH_WATER_MARK / 2 && !stream.localEnded) {
      stream.needsDrain = false;
      this.deliver(stream, () => stream.handlers.drain());
    }
    return stream.queue.length === 0 && !stream.closed;
  }

  /** Hands a frame from the peer to its handler, after the checks every frame must pass. */
  protected dispatch(f: Frame): void {
    // The rest of a read after the connection ended (a draining connection's last stream closed) is not answered.
    if (this.destroyed) return;
    if (this.socket.writableLength > FLOOD_LIMIT) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `the peer sends frames but does not read the answers (${this.socket.writableLength} bytes unread)`);
    }
    this.checkFrame(f);
    switch (f.type) {
      case FrameType.DATA: return this.onData(f);
      case FrameType.HEADERS: return this.onHeaders(f);
      case FrameType.CONTINUATION: return this.onContinuation(f);
      case FrameType.RST_STREAM: return this.onReset(f);
      case FrameType.SETTINGS: return this.onSettings(f);
      case FrameType.PING:
        if (f.streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if ((f.flags & Flag.ACK) === 0) this.socket.write(frame(FrameType.PING, Flag.ACK, 0, Buffer.from(f.payload)));
        return;
      case FrameType.GOAWAY: return this.onGoaway(f);
      case FrameType.WINDOW_UPDATE: return this.onWindowUpdate(f);
      // Neither side takes pushes: the client disables them, and a client cannot push.
      case FrameType.PUSH_PROMISE: throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE, and push is not in use');
      default: return; // PRIORITY and unknown frame types carry nothing used here.
    }
  }

  protected abstract onData(f: Frame): void;
  protected abstract onReset(f: Frame): void;
  protected abstract onSettings(f: Frame): void;
  protected abstract onGoaway(f: Frame): void;

  /** Checks what every frame must satisfy whatever its stream: header blocks not interrupted, fixed payload sizes. */
  private checkFrame(f: Frame): void {
    if (this.headerBlock && (f.type !== FrameType.CONTINUATION || f.streamId !== this.headerBlock.streamId)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'a header block was interrupted by another frame');
    }
    const size = FIXED_PAYLOAD_SIZE[f.type];
    if (size !== undefined && (f.type === FrameType.GOAWAY ? f.payload.length < size : f.payload.length !== size)) {
      throw new FrameSizeError(`frame type ${f.type} with a payload of ${f.payload.length} bytes`);
    }
  }

  protected onHeaders(f: Frame): void {
    let block = unpad(f);
    if (f.flags & Flag.PRIORITY) block = block.subarray(5);
    if (f.flags & Flag.END_HEADERS) {
      this.onHeaderBlock(f.streamId, f.flags, block);
    } else {
      this.headerBlock = { streamId: f.streamId, flags: f.flags, parts: [Buffer.from(block)], size: block.length };
    }
  }

  protected onContinuation(f: Frame): void {
    const pending = this.headerBlock;
    if (!pending) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without HEADERS');
    pending.parts.push(Buffer.from(f.payload));
    pending.size += f.payload.length;
    if (pending.size > this.maxHeaderBlockSize) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block larger than ${this.maxHeaderBlockSize} bytes`);
    }
    if (f.flags & Flag.END_HEADERS) {
      this.headerBlock = undefined;
      this.onHeaderBlock(pending.streamId, pending.flags, Buffer.concat(pending.parts, pending.size));
    }
  }

  /** Applies the peer's SETTINGS (window size, frame size) and returns every setting for the side's own use. */
  protected applySettings(f: Frame): Array<[id: number, value: number]> {
    if (f.streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (f.payload.length % 6 !== 0) throw new FrameSizeError('SETTINGS payload is not a multiple of 6 bytes');
    const settings: Array<[number, number]> = [];
    for (let pos = 0; pos < f.payload.length; pos += 6) {
      const id = f.payload.readUInt16BE(pos);
      const value = f.payload.readUInt32BE(pos + 2);
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW_SIZE) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, `initial window size ${value} above 2^31-1`);
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (stream.queue.length > 0 || stream.endQueued) this.schedule(stream);
        }
      } else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `max frame size ${value} out of range`);
        this.peerMaxFrameSize = value;
      }
      settings.push([id, value]);
    }
    return settings;
  }

  protected onWindowUpdate(f: Frame): void {
    const increment = f.payload.readUInt32BE(0) & 0x7fffffff;
    if (f.streamId === 0) {
      if (increment === 0 || this.sendWindow + increment > MAX_WINDOW_SIZE) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'invalid connection WINDOW_UPDATE');
      this.sendWindow += increment;
      for (const stream of this.streams.values()) if (stream.queue.length > 0 || stream.endQueued) this.schedule(stream);
      return;
    }
    const stream = this.streams.get(f.streamId);
    if (!stream) return;
    if (increment === 0 || stream.sendWindow + increment > MAX_WINDOW_SIZE) {
      this.resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR, 'invalid stream WINDOW_UPDATE');
      return;
    }
    stream.sendWindow += increment;
    if (stream.queue.length > 0 || stream.endQueued) this.schedule(stream);
  }

  /**
   * Runs a stream's handler. One that throws costs its own stream (reset), never the connection: the frames after it
   * in the same read still belong to other streams.
   */
  protected deliver(stream: S, handler: () => void): void {
    try {
      handler();
    } catch (err) {
      if (!stream.closed) this.resetStream(stream, this.handlerFailureCode, `the stream's handler failed: ${(err as Error).message}`);
    }
  }
}
