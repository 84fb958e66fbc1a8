/* eslint-disable no-bitwise -- HTTP/2 frames and HPACK are bit fields */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Http2Connection, Http2Stream, connectionErrorCode } from './connection';
import {
  CONNECTION_PREFACE, DEFAULT_WINDOW_SIZE, ErrorCode, Flag, Frame, FrameReader, FrameType, Setting, frame, settingsPayload, uint32Payload, unpad,
} from './frames';
import { HeaderRecord, HpackDecoder, encodeHeaderBlock, toHeaderRecord } from './hpack';

/**
 * A small HTTP/2 client for the data plane's upstream calls (the local model server, peers' front doors). It does
 * what forwarding a gRPC call needs and no more: requests with a body, response headers, data and trailers, flow
 * control both ways, cancellation, the peer's settings, PING and GOAWAY. Compared with `node:http2`'s client it
 * keeps no per-stream Duplex, emitter or async resource, and writes each turn's frames in one system call: the
 * forwarding hop is the mesh's hot path.
 */

/** Response headers or trailers; a repeated name gives an array. */
export type ResponseHeaders = HeaderRecord;

/** How a stream ended. `refused`: the peer never processed it, so it is safe to send elsewhere. */
export type StreamEnd =
  | { readonly kind: 'ended' }
  | { readonly kind: 'cancelled' }
  | { readonly kind: 'reset'; readonly code: number }
  | { readonly kind: 'refused'; readonly connectFailure: boolean; readonly message: string }
  | { readonly kind: 'failed'; readonly message: string };

export interface StreamHandlers {
  /** The first (non-informational) headers; `endStream` when they are also the last (a trailers-only answer). */
  response(headers: ResponseHeaders, endStream: boolean): void;
  data(chunk: Buffer): void;
  trailers(headers: ResponseHeaders): void;
  /** Called once, last: the response is complete (`ended`) or the stream ended otherwise. */
  close(end: StreamEnd): void;
  /** The request's queued bytes fell below the high-water mark after a `write` returned false. */
  drain(): void;
}

/** What this side lets the peer send before it hears back: per stream, and for the whole connection. */
const STREAM_WINDOW = 4 << 20;
const CONNECTION_WINDOW = 64 << 20;
/** This side's receive limits, announced in SETTINGS. */
const MAX_FRAME_SIZE = 1 << 20;
const HEADER_TABLE_SIZE = 4_096;
const MAX_HEADER_LIST_SIZE = 1 << 20;
const MAX_STREAM_ID = 2 ** 31 - 1;

const ignore = () => undefined;
const NO_HANDLERS: StreamHandlers = { response: ignore, data: ignore, trailers: ignore, close: ignore, drain: ignore };

export class ClientStream extends Http2Stream {
  handlers: StreamHandlers = NO_HANDLERS;
  /** @internal */ responded = false;
  /** @internal Received bytes not yet given back to the peer as window. */ unacked = 0;

  constructor(private readonly connection: ClientConnection, readonly headerBlock: Buffer) {
    // The send window is the peer's initial window as of when the stream starts (ClientConnection.start).
    super(0);
  }

  /** Queues request bytes; false once more than the high-water mark waits (then wait for `drain`). */
  write(chunk: Buffer): boolean {
    if (this.closed || this.endQueued) return true;
    const room = this.enqueue(chunk);
    if (chunk.length > 0) this.connection.schedule(this);
    return room;
  }

  /** Ends the request (END_STREAM after the queued bytes). */
  end(): void {
    if (this.closed || this.endQueued) return;
    this.endQueued = true;
    this.connection.schedule(this);
  }

  protected creditHeldBack(): void {
    this.connection.credit(this, 0);
  }

  /** Abandons the stream: RST_STREAM(CANCEL) if it was sent; `close` gets `cancelled`. */
  cancel(): void {
    this.connection.cancel(this);
  }
}

export interface ClientConnectionOptions {
  /** Sent as `:authority`. */
  readonly authority: string;
  readonly scheme: 'http' | 'https';
}

/**
 * One HTTP/2 connection over `socket` (plain, TLS with ALPN h2, or a Unix socket). Requests may be made at once;
 * they go out when the socket connects. A connection that failed, was told GOAWAY or ran out of stream ids takes no
 * more requests (`usable` is false); the pool then opens a new one.
 */
export class ClientConnection extends Http2Connection<ClientStream> {
  /** Requests waiting for the peer's concurrent-stream limit. */
  private readonly waiting: ClientStream[] = [];
  private nextStreamId = 1;
  private peerMaxConcurrent = Infinity;
  private connectionUnacked = 0;
  private readonly decoder = new HpackDecoder(HEADER_TABLE_SIZE, MAX_HEADER_LIST_SIZE);
  private readonly reader: FrameReader;
  protected readonly maxHeaderBlockSize = MAX_HEADER_LIST_SIZE;
  protected readonly handlerFailureCode = ErrorCode.CANCEL;
  /** The peer's first SETTINGS arrived: this is a working HTTP/2 connection. */
  private established = false;
  private goingAway = false;
  private closeWhenIdle = false;
  private failure: string | undefined;
  /** `:scheme` and `:authority`, the same on every request. */
  private readonly pseudoHeaders: Buffer;

  constructor(socket: Socket | TLSSocket, options: ClientConnectionOptions) {
    super(socket);
    this.reader = new FrameReader(MAX_FRAME_SIZE, (f) => this.dispatch(f));
    this.pseudoHeaders = encodeHeaderBlock([[':scheme', options.scheme], [':authority', options.authority]]);
    socket.cork();
    socket.write(CONNECTION_PREFACE);
    socket.write(frame(FrameType.SETTINGS, 0, 0, settingsPayload([
      [Setting.ENABLE_PUSH, 0],
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [Setting.MAX_FRAME_SIZE, MAX_FRAME_SIZE],
      [Setting.HEADER_TABLE_SIZE, HEADER_TABLE_SIZE],
      [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_SIZE],
    ])));
    socket.write(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32Payload(CONNECTION_WINDOW - DEFAULT_WINDOW_SIZE)));
    process.nextTick(() => socket.uncork());
    socket.on('secureConnect', () => {
      const alpn = (socket as TLSSocket).alpnProtocol;
      if (alpn !== 'h2') this.fail(`the peer did not agree to HTTP/2 over TLS (ALPN ${alpn || 'none'})`, ErrorCode.PROTOCOL_ERROR);
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
      } catch (err) {
        this.fail(`HTTP/2 error from the peer: ${(err as Error).message}`, connectionErrorCode(err));
      }
    });
    socket.on('error', (err) => {
      this.failure ??= err.message;
    });
    socket.on('close', () => this.fail(this.failure ?? 'the connection closed'));
  }

  /** Takes new requests: not failed, not told to go away, stream ids left. */
  get usable(): boolean {
    return !this.destroyed && !this.goingAway && !this.closeWhenIdle && this.nextStreamId <= MAX_STREAM_ID;
  }

  /** Streams sent or waiting to be sent. */
  get activeStreams(): number {
    return this.streams.size + this.waiting.length;
  }

  unref(): void {
    this.socket.unref();
  }

  /**
   * Starts a request. `headers` are [name, value] pairs, pseudo-headers (`:method`, `:path`) first; `:scheme` and
   * `:authority` are added. Frames go out at the end of the current turn, with whatever the caller wrote by then.
   */
  request(headers: ReadonlyArray<readonly [string, string]>): ClientStream {
    const block = encodeHeaderBlock(headers, this.pseudoHeaders);
    const stream = new ClientStream(this, block);
    if (!this.usable) {
      const message = this.failure ?? 'the connection is closing';
      process.nextTick(() => this.finish(stream, { kind: 'refused', connectFailure: !this.established, message }));
      return stream;
    }
    if (this.streams.size < this.peerMaxConcurrent) this.schedule(stream);
    else this.waiting.push(stream);
    return stream;
  }

  /** Graceful close: no new requests; the socket closes once the streams in flight are done. */
  close(): void {
    this.closeWhenIdle = true;
    if (this.activeStreams === 0) this.destroy();
  }

  destroy(): void {
    this.fail('the connection was closed by this side', ErrorCode.NO_ERROR);
  }

  /** @internal Gives the peer back `bytes` of window for `stream` (and whatever a paused stream held back). */
  credit(stream: ClientStream, bytes: number): void {
    stream.unacked += bytes;
    if (stream.paused || stream.closed || stream.remoteEnded || stream.id === 0) return;
    // Batched: one WINDOW_UPDATE per half window consumed, not one per DATA frame.
    if (stream.unacked >= STREAM_WINDOW / 2) {
      this.socket.write(frame(FrameType.WINDOW_UPDATE, 0, stream.id, uint32Payload(stream.unacked)));
      stream.unacked = 0;
    }
  }

  /** @internal */
  cancel(stream: ClientStream): void {
    if (stream.closed) return;
    if (stream.id !== 0) this.socket.write(frame(FrameType.RST_STREAM, 0, stream.id, uint32Payload(ErrorCode.CANCEL)));
    this.finish(stream, { kind: 'cancelled' });
  }

  protected send(stream: ClientStream): void {
    if (stream.id === 0 && !this.start(stream)) return;
    this.sendData(stream);
  }

  /** Sends a waiting stream's HEADERS; false if it cannot start now. */
  private start(stream: ClientStream): boolean {
    if (this.streams.size >= this.peerMaxConcurrent) {
      if (!this.waiting.includes(stream)) this.waiting.push(stream);
      return false;
    }
    if (this.nextStreamId > MAX_STREAM_ID) {
      this.finish(stream, { kind: 'refused', connectFailure: false, message: 'the connection ran out of stream ids' });
      return false;
    }
    stream.id = this.nextStreamId;
    this.nextStreamId += 2;
    // Windows are the peer's as of now: a request that waited may have seen SETTINGS change them.
    stream.sendWindow = this.peerInitialWindow;
    this.streams.set(stream.id, stream);
    // A request ended without a body goes out as HEADERS(END_STREAM); otherwise sendData follows with the DATA.
    const endNow = stream.endQueued && stream.queuedBytes === 0;
    this.writeHeaders(stream.id, stream.headerBlock, endNow);
    if (endNow) stream.localEnded = true;
    return true;
  }

  /** Sends queued request bytes as far as the windows allow, then END_STREAM once everything is out. */
  private sendData(stream: ClientStream): void {
    if (!this.writeData(stream, stream.endQueued)) return;
    if (stream.endQueued && !stream.localEnded) {
      this.socket.write(frame(FrameType.DATA, Flag.END_STREAM, stream.id));
      stream.localEnded = true;
    }
    if (stream.localEnded && stream.remoteEnded) this.finish(stream, { kind: 'ended' });
  }

  protected onData(f: Frame): void {
    // Flow control counts the whole frame, padding included, whoever it was for.
    this.connectionUnacked += f.payload.length;
    if (this.connectionUnacked >= CONNECTION_WINDOW / 2) {
      this.socket.write(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32Payload(this.connectionUnacked)));
      this.connectionUnacked = 0;
    }
    const stream = this.streams.get(f.streamId);
    if (!stream || stream.remoteEnded) return;
    const data = unpad(f);
    if (!stream.responded) {
      this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, 'the peer sent data before response headers');
      return;
    }
    this.credit(stream, f.payload.length);
    if (data.length > 0) this.deliver(stream, () => stream.handlers.data(data));
    if (f.flags & Flag.END_STREAM) this.remoteEnd(stream);
  }

  protected onHeaderBlock(streamId: number, flags: number, block: Buffer): void {
    // Decoded whatever the stream's state: the decoder's table must see every block.
    const headers = toHeaderRecord(this.decoder.decode(block));
    const stream = this.streams.get(streamId);
    if (!stream || stream.remoteEnded) return;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (!stream.responded) {
      const code = Number(headers[':status']);
      // Informational (1xx) answers precede the real one.
      if (code >= 100 && code < 200 && !endStream) return;
      stream.responded = true;
      this.deliver(stream, () => stream.handlers.response(headers, endStream));
    } else if (endStream) {
      this.deliver(stream, () => stream.handlers.trailers(headers));
    } else {
      this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, 'the peer sent trailers without ending the stream');
      return;
    }
    if (endStream) this.remoteEnd(stream);
  }

  private remoteEnd(stream: ClientStream): void {
    stream.remoteEnded = true;
    if (stream.localEnded) {
      this.finish(stream, { kind: 'ended' });
    } else {
      // The answer is complete while the request is still open: the peer needs nothing more from us.
      this.socket.write(frame(FrameType.RST_STREAM, 0, stream.id, uint32Payload(ErrorCode.NO_ERROR)));
      this.finish(stream, { kind: 'ended' });
    }
  }

  protected onReset(f: Frame): void {
    const stream = this.streams.get(f.streamId);
    if (!stream) return;
    const code = f.payload.length >= 4 ? f.payload.readUInt32BE(0) : ErrorCode.PROTOCOL_ERROR;
    this.finish(stream, code === ErrorCode.REFUSED_STREAM
      ? { kind: 'refused', connectFailure: false, message: 'the peer refused the stream' }
      : { kind: 'reset', code });
  }

  protected onSettings(f: Frame): void {
    if (f.flags & Flag.ACK) return;
    for (const [id, value] of this.applySettings(f)) if (id === Setting.MAX_CONCURRENT_STREAMS) this.peerMaxConcurrent = value;
    this.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
    this.established = true;
    this.startWaiting();
    for (const stream of this.streams.values()) if (stream.queue.length > 0) this.schedule(stream);
  }

  protected onGoaway(f: Frame): void {
    const lastStreamId = f.payload.readUInt32BE(0) & 0x7fffffff;
    const code = f.payload.readUInt32BE(4);
    this.goingAway = true;
    const message = `the peer is going away (HTTP/2 code ${code})`;
    for (const stream of [...this.streams.values()]) {
      if (stream.id > lastStreamId) this.finish(stream, { kind: 'refused', connectFailure: false, message });
    }
    for (const stream of this.waiting.splice(0)) this.finish(stream, { kind: 'refused', connectFailure: false, message });
    // Later requests are refused with the peer's reason.
    this.failure = message;
    if (this.streams.size === 0) this.fail(message, ErrorCode.NO_ERROR);
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.streams.size + this.dirtyUnstarted() < this.peerMaxConcurrent) {
      this.schedule(this.waiting.shift()!);
    }
  }

  private dirtyUnstarted(): number {
    let n = 0;
    for (const stream of this.dirty) if (stream.id === 0) n++;
    return n;
  }

  protected resetStream(stream: ClientStream, code: number, message: string): void {
    this.socket.write(frame(FrameType.RST_STREAM, 0, stream.id, uint32Payload(code)));
    this.finish(stream, { kind: 'failed', message });
  }

  private finish(stream: ClientStream, end: StreamEnd): void {
    if (stream.closed) return;
    stream.markClosed();
    this.dirty.delete(stream);
    if (stream.id !== 0) this.streams.delete(stream.id);
    const waitingAt = this.waiting.indexOf(stream);
    if (waitingAt >= 0) this.waiting.splice(waitingAt, 1);
    try {
      stream.handlers.close(end);
    } catch (err) {
      process.emitWarning(`HTTP/2 client: a stream's close handler failed: ${(err as Error).message}`);
    }
    if (this.destroyed) return;
    this.startWaiting();
    if ((this.goingAway || this.closeWhenIdle) && this.activeStreams === 0) this.destroy();
  }

  /** Ends the connection: every stream still open gets `refused` (never sent) or `failed`. */
  private fail(message: string, code?: number): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.failure ??= message;
    if (code !== undefined && !this.socket.destroyed) {
      // GOAWAY names the last stream the peer may have started; none here (this side never accepts streams).
      this.endSocket(frame(FrameType.GOAWAY, 0, 0, uint32Payload(0, code)));
    } else {
      this.socket.destroy();
    }
    const sent = [...this.streams.values()];
    const unsent = [...this.waiting.splice(0), ...[...this.dirty].filter((s) => s.id === 0)];
    this.streams.clear();
    this.dirty.clear();
    for (const stream of unsent) this.finish(stream, { kind: 'refused', connectFailure: !this.established, message });
    for (const stream of sent) {
      this.finish(stream, this.established ? { kind: 'failed', message } : { kind: 'refused', connectFailure: true, message });
    }
    this.notifyClosed();
  }
}
