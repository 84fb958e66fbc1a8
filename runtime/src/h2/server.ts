/* eslint-disable no-bitwise -- HTTP/2 frames and HPACK are bit fields */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ConnectionError, Http2Connection, Http2Stream, connectionErrorCode } from './connection';
import {
  CONNECTION_PREFACE, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW_SIZE, ErrorCode, Flag, Frame, FrameReader, FrameType, Setting, frame, settingsPayload,
  uint32Payload, unpad,
} from './frames';
import { HeaderList, HeaderListSizeError, HeaderRecord, HpackDecoder, encodeHeaderBlock, toHeaderRecord } from './hpack';

/**
 * The server side of the front door's HTTP/2: what serving gRPC calls needs and no more. Requests arrive as streams
 * with decoded headers; the answer is headers, data and trailers, written in one system call per event-loop turn
 * (trailers go in the same write as the last data, where `node:http2` needs a turn of its own for them). Flow control
 * works both ways, so a slow reader holds its caller back instead of filling memory. No push, no priorities.
 */

/** Request headers (pseudo-headers included); a repeated name gives an array. */
export type IncomingHeaders = HeaderRecord;

/** Response headers or trailers to send; numbers are written in decimal, arrays as repeated fields. */
export type OutgoingHeaders = Record<string, string | number | readonly string[] | undefined>;

/** How a stream ended. `done`: the answer went out whole; `reset`: the caller reset it; `failed`: the connection broke. */
export type ServerStreamEnd =
  | { readonly kind: 'done' }
  | { readonly kind: 'reset'; readonly code: number }
  | { readonly kind: 'failed'; readonly message: string };

export interface ServerStreamHandlers {
  /** Request bytes. */
  data(chunk: Buffer): void;
  /** The caller finished its request (END_STREAM). */
  end(): void;
  /** The answer's queued bytes fell below the high-water mark after a `write` returned false. */
  drain(): void;
  /** Called once, last. */
  close(end: ServerStreamEnd): void;
}

/**
 * What a caller may send before it hears back: per stream, and for the whole connection. A paused stream keeps what
 * it received of the connection's window until it resumes, so it takes 64 paused streams, each with a full window, to
 * hold up the others on the same connection (node:http2's streams likewise hold the window while not read).
 */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 64 << 20;
/** The connection's window goes back in steps of this much. */
const CONNECTION_CREDIT_STEP = 1 << 20;

/** The largest frame this side accepts, announced in SETTINGS. */
const MAX_FRAME_SIZE = 1 << 20;
const HEADER_TABLE_SIZE = 4_096;
/**
 * Open streams a caller may reset at once, and then per second ("rapid reset", CVE-2023-44487: each stream opened and
 * reset at once costs this side a routing decision and an upstream call while costing the caller nothing).
 */
const RESET_BURST = 1_000;
const RESETS_PER_SECOND = 100;

/** An HTTP/1 request line: method, target, version. */
const HTTP1_REQUEST_LINE = /^[A-Z]{3,10} [^ \r\n]+ HTTP\/1\.[01]\r?\n/;
const HTTP1_REFUSAL_TEXT = 'this port speaks gRPC over HTTP/2 (prior knowledge, or TLS with ALPN h2); KServe v2 REST is on MM_REST_PORT\n';
const HTTP1_REFUSAL = Buffer.from('HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\nConnection: close\r\n'
  + `Content-Length: ${HTTP1_REFUSAL_TEXT.length}\r\n\r\n${HTTP1_REFUSAL_TEXT}`, 'latin1');

const REQUEST_PSEUDO_HEADERS = new Set([':method', ':scheme', ':path', ':authority']);
/** Connection-specific fields HTTP/2 forbids in requests (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/** A field name: token characters, lower case (RFC 9113 §8.2.1). */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/** A field value may not hold NUL, CR or LF (RFC 9113 §8.2.1). */
const BAD_FIELD_VALUE = /[\0\r\n]/;

/** Why a request's header block is not a valid HTTP/2 request, or undefined when it is. */
function malformed(list: HeaderList): string | undefined {
  let regularSeen = false;
  const pseudo = new Set<string>();
  for (const [name, value] of list) {
    if (name.startsWith(':')) {
      if (regularSeen) return `pseudo-header ${name} after a regular field`;
      if (!REQUEST_PSEUDO_HEADERS.has(name)) return `unknown pseudo-header ${name}`;
      if (pseudo.has(name)) return `pseudo-header ${name} repeated`;
      pseudo.add(name);
    } else {
      regularSeen = true;
      if (!FIELD_NAME.test(name)) return `invalid field name ${JSON.stringify(name)}`;
      if (CONNECTION_SPECIFIC.has(name) || (name === 'te' && value !== 'trailers')) return `connection-specific field ${name}`;
    }
    if (BAD_FIELD_VALUE.test(value)) return `invalid value of field ${name}`;
  }
  for (const name of [':method', ':scheme', ':path']) if (!pseudo.has(name)) return `missing ${name}`;
  return undefined;
}

function headerFields(headers: OutgoingHeaders, first?: readonly [string, string]): Array<[string, string]> {
  const out: Array<[string, string]> = first ? [[first[0], first[1]]] : [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name === ':status') continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, String(value)]);
  }
  return out;
}

const ignore = () => undefined;

export class ServerStream extends Http2Stream {
  readonly handlers: ServerStreamHandlers = { data: ignore, end: ignore, drain: ignore, close: ignore };
  /** @internal Response HEADERS not yet written. */ headerBlock: Buffer | undefined;
  /** @internal */ headerEndsStream = false;
  /** @internal */ trailerBlock: Buffer | undefined;
  /** @internal Received bytes not yet credited back to the caller's stream window. */ unacked = 0;
  /** @internal Received while paused, not yet credited back to the connection's window. */ held = 0;
  private responded = false;

  constructor(private readonly connection: ServerConnection, id: number, readonly headers: IncomingHeaders, sendWindow: number) {
    super(sendWindow);
    this.id = id;
  }

  /** Response headers were given (sent or about to be). */
  get headersSent(): boolean {
    return this.responded;
  }

  /** Sends response headers (`:status` defaults to 200); `endStream` makes them the whole answer. */
  respond(headers: OutgoingHeaders, endStream = false): void {
    if (this.responded || this.isClosed) return;
    this.responded = true;
    this.headerBlock = encodeHeaderBlock(headerFields(headers, [':status', String(headers[':status'] ?? 200)]));
    this.headerEndsStream = endStream;
    if (endStream) this.endQueued = true;
    this.connection.schedule(this);
  }

  /** Queues answer bytes (responding 200 first if nothing was); false once more than the high-water mark waits. */
  write(chunk: Buffer | string): boolean {
    if (this.isClosed || this.endQueued) return true;
    if (!this.responded) this.respond({});
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const room = this.enqueue(bytes);
    if (bytes.length > 0) this.connection.schedule(this);
    return room;
  }

  /** Ends the answer after the queued bytes, with `trailers` when given. */
  end(trailers?: OutgoingHeaders): void {
    if (this.isClosed || this.endQueued) return;
    if (!this.responded) this.respond({});
    this.endQueued = true;
    if (trailers) this.trailerBlock = encodeHeaderBlock(headerFields(trailers));
    this.connection.schedule(this);
  }

  /** Abandons the stream with RST_STREAM(`code`); `close` gets `reset` with that code. */
  reset(code: number = ErrorCode.CANCEL): void {
    this.connection.abandon(this, code);
  }

  protected creditHeldBack(): void {
    this.connection.credit(this, 0);
  }
}

export interface ServerConnectionOptions {
  /** Streams a caller may have open at once; more are refused (REFUSED_STREAM, safe to retry). */
  readonly maxConcurrentStreams: number;
  /** Largest request header list, counted as HTTP/2 does; a larger one resets its stream (ENHANCE_YOUR_CALM). */
  readonly maxHeaderListSize: number;
  /** Each new request. Handlers must be set before it returns: request bytes are not kept for later. */
  readonly onStream: (stream: ServerStream) => void;
  /** A protocol error that ended the connection, for the log. */
  readonly onError?: (err: Error) => void;
}

/**
 * One HTTP/2 connection accepted on `socket` (plain or TLS that agreed on h2). Garbage, a protocol violation or a
 * broken socket ends this connection only, with GOAWAY where the socket still takes it.
 */
export class ServerConnection extends Http2Connection<ServerStream> {
  private prefaceLeft = CONNECTION_PREFACE.length;
  private settingsSeen = false;
  private lastStreamId = 0;
  private resetAllowance = RESET_BURST;
  private resetAllowanceAt = performance.now();
  private receiveWindow = CONNECTION_WINDOW;
  private connectionUnacked = 0;
  private readonly decoder: HpackDecoder;
  private readonly reader: FrameReader;
  /** The encoded block can be a little larger than the decoded list it carries, never many times larger. */
  protected readonly maxHeaderBlockSize: number;
  protected readonly handlerFailureCode = ErrorCode.INTERNAL_ERROR;
  /** GOAWAY sent: no new streams. */
  private draining = false;

  constructor(socket: Socket | TLSSocket, private readonly options: ServerConnectionOptions) {
    super(socket);
    this.decoder = new HpackDecoder(HEADER_TABLE_SIZE, options.maxHeaderListSize);
    this.reader = new FrameReader(MAX_FRAME_SIZE, (f) => this.onFrame(f));
    this.maxHeaderBlockSize = 4 * options.maxHeaderListSize + DEFAULT_MAX_FRAME_SIZE;
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', (err) => this.fail(err.message));
    socket.on('close', () => this.fail('the connection closed'));
  }

  /** Streams open now. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Graceful close: GOAWAY, no new streams; the socket closes once the open ones are done. */
  close(): void {
    if (this.destroyed || this.draining) return;
    this.draining = true;
    this.socket.write(frame(FrameType.GOAWAY, 0, 0, uint32Payload(this.lastStreamId, ErrorCode.NO_ERROR)));
    if (this.streams.size === 0) this.end();
  }

  destroy(): void {
    this.fail('the connection was closed by this side');
  }

  /**
   * @internal Gives the caller back `bytes` received on `stream`. The connection's share goes back at once unless the
   * stream is paused (then it waits for `resume`, so a paused stream holds at most its window of the connection's);
   * the stream's share goes back in batches of half a window.
   */
  credit(stream: ServerStream, bytes: number): void {
    if (stream.closed) {
      this.creditConnection(bytes);
      return;
    }
    stream.unacked += bytes;
    if (stream.paused) {
      stream.held += bytes;
      return;
    }
    if (stream.held + bytes > 0) this.creditConnection(stream.held + bytes);
    stream.held = 0;
    if (!stream.remoteEnded && stream.unacked >= STREAM_WINDOW / 2) {
      this.socket.write(frame(FrameType.WINDOW_UPDATE, 0, stream.id, uint32Payload(stream.unacked)));
      stream.unacked = 0;
    }
  }

  /** @internal Ends `stream` with RST_STREAM(`code`) at this side's wish; `close` gets `reset` with that code. */
  abandon(stream: ServerStream, code: number): void {
    this.resetWith(stream, code, { kind: 'reset', code });
  }

  protected resetStream(stream: ServerStream, code: number, message: string): void {
    this.resetWith(stream, code, { kind: 'failed', message });
  }

  private resetWith(stream: ServerStream, code: number, end: ServerStreamEnd): void {
    if (stream.closed) return;
    this.socket.write(frame(FrameType.RST_STREAM, 0, stream.id, uint32Payload(code)));
    this.finish(stream, end);
  }

  private creditConnection(bytes: number): void {
    this.connectionUnacked += bytes;
    if (this.connectionUnacked >= CONNECTION_CREDIT_STEP) {
      this.socket.write(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32Payload(this.connectionUnacked)));
      this.receiveWindow += this.connectionUnacked;
      this.connectionUnacked = 0;
    }
  }

  private onBytes(chunk: Buffer): void {
    if (this.destroyed) return;
    try {
      let bytes = chunk;
      this.socket.cork();
      try {
        if (this.prefaceLeft > 0) {
          const offset = CONNECTION_PREFACE.length - this.prefaceLeft;
          const take = Math.min(this.prefaceLeft, bytes.length);
          if (!bytes.subarray(0, take).equals(CONNECTION_PREFACE.subarray(offset, offset + take))) {
            if (offset === 0 && HTTP1_REQUEST_LINE.test(bytes.toString('latin1', 0, 8_192))) {
              this.refuseHttp1();
              return;
            }
            throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'not an HTTP/2 connection preface');
          }
          // This side's preface goes out once the caller's begins like one, so an HTTP/1 caller gets a readable answer.
          if (offset === 0) this.sendPreface();
          this.prefaceLeft -= take;
          bytes = bytes.subarray(take);
          if (bytes.length === 0) return;
        }
        this.reader.push(bytes);
      } finally {
        this.socket.uncork();
      }
    } catch (err) {
      const message = `HTTP/2 error from the caller: ${(err as Error).message}`;
      this.options.onError?.(new Error(message));
      this.fail(message, connectionErrorCode(err));
    }
  }

  private sendPreface(): void {
    this.socket.write(frame(FrameType.SETTINGS, 0, 0, settingsPayload([
      [Setting.MAX_CONCURRENT_STREAMS, this.options.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [Setting.MAX_FRAME_SIZE, MAX_FRAME_SIZE],
      [Setting.MAX_HEADER_LIST_SIZE, this.options.maxHeaderListSize],
      [Setting.ENABLE_PUSH, 0],
    ])));
    this.socket.write(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32Payload(CONNECTION_WINDOW - DEFAULT_WINDOW_SIZE)));
  }

  /** An HTTP/1 request (someone pointed curl or a browser at the gRPC port): a plain answer saying what to use. */
  private refuseHttp1(): void {
    this.options.onError?.(new Error('an HTTP/1 request on the HTTP/2 port'));
    this.end(HTTP1_REFUSAL);
  }

  /** Writes a stream's pending headers, data as far as the windows allow, and its end once everything is out. */
  protected send(stream: ServerStream): void {
    if (stream.headerBlock) {
      this.writeHeaders(stream.id, stream.headerBlock, stream.headerEndsStream);
      stream.headerBlock = undefined;
      if (stream.headerEndsStream) {
        this.localEnd(stream);
        return;
      }
    }
    if (!this.writeData(stream, stream.endQueued && !stream.trailerBlock)) return;
    if (!stream.localEnded) {
      if (!stream.endQueued) return;
      if (stream.trailerBlock) this.writeHeaders(stream.id, stream.trailerBlock, true);
      else this.socket.write(frame(FrameType.DATA, Flag.END_STREAM, stream.id));
    }
    this.localEnd(stream);
  }

  /** The answer is out. A caller still sending is told to stop: nothing more of its request is needed. */
  private localEnd(stream: ServerStream): void {
    stream.localEnded = true;
    if (!stream.remoteEnded) this.socket.write(frame(FrameType.RST_STREAM, 0, stream.id, uint32Payload(ErrorCode.NO_ERROR)));
    this.finish(stream, { kind: 'done' });
  }

  private onFrame(f: Frame): void {
    if (this.destroyed) return;
    if (!this.settingsSeen) {
      if (f.type !== FrameType.SETTINGS || (f.flags & Flag.ACK) !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the first frame was not SETTINGS');
      this.settingsSeen = true;
    }
    if (f.type === FrameType.HEADERS && (f.streamId === 0 || f.streamId % 2 === 0)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${f.streamId}`);
    }
    this.dispatch(f);
  }

  protected onData(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    this.receiveWindow -= f.payload.length;
    if (this.receiveWindow < 0) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'the caller sent more than the connection window');
    const stream = this.streams.get(f.streamId);
    if (!stream) {
      if (f.streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on stream ${f.streamId}, never opened`);
      // A stream this side already ended: its bytes only count for the connection's window.
      this.creditConnection(f.payload.length);
      return;
    }
    if (stream.remoteEnded) {
      this.creditConnection(f.payload.length);
      this.resetStream(stream, ErrorCode.STREAM_CLOSED, 'the caller sent DATA after ending its request');
      return;
    }
    // What the caller sent and this side has not credited back is what it used of the stream's window.
    if (stream.unacked + f.payload.length > STREAM_WINDOW) {
      this.creditConnection(f.payload.length);
      this.resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR, 'the caller sent more than the stream window');
      return;
    }
    const data = unpad(f);
    if (data.length > 0) this.deliver(stream, () => stream.handlers.data(data));
    if (f.flags & Flag.END_STREAM) this.remoteEnd(stream);
    // Flow control counts the whole frame, padding included.
    this.credit(stream, f.payload.length);
  }

  protected onHeaderBlock(streamId: number, flags: number, block: Buffer): void {
    const endStream = (flags & Flag.END_STREAM) !== 0;
    let list: HeaderList | undefined;
    let listTooLarge = false;
    // Decoded whatever becomes of the stream: the decoder's table must see every block.
    try {
      list = this.decoder.decode(block);
    } catch (err) {
      if (!(err instanceof HeaderListSizeError)) throw err;
      listTooLarge = true;
    }
    const existing = this.streams.get(streamId);
    if (existing) {
      // Request trailers: they must end the request, and carry nothing this side uses.
      if (!endStream || existing.remoteEnded) {
        this.resetStream(existing, ErrorCode.PROTOCOL_ERROR, 'the caller sent headers in the middle of its request');
        return;
      }
      this.remoteEnd(existing);
      return;
    }
    // A stream this side already ended: the caller may not have seen the end yet (RFC 9113 §5.1, ignore).
    if (streamId <= this.lastStreamId) return;
    this.lastStreamId = streamId;
    const refuse = (code: number) => this.socket.write(frame(FrameType.RST_STREAM, 0, streamId, uint32Payload(code)));
    if (this.draining) {
      refuse(ErrorCode.REFUSED_STREAM);
      return;
    }
    if (listTooLarge || !list) {
      refuse(ErrorCode.ENHANCE_YOUR_CALM);
      return;
    }
    if (malformed(list) !== undefined) {
      refuse(ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (this.streams.size >= this.options.maxConcurrentStreams) {
      refuse(ErrorCode.REFUSED_STREAM);
      return;
    }
    const stream = new ServerStream(this, streamId, toHeaderRecord(list), this.peerInitialWindow);
    this.streams.set(streamId, stream);
    try {
      this.options.onStream(stream);
    } catch (err) {
      this.resetStream(stream, ErrorCode.INTERNAL_ERROR, `the stream's handler failed: ${(err as Error).message}`);
      return;
    }
    if (endStream) this.remoteEnd(stream);
  }

  private remoteEnd(stream: ServerStream): void {
    if (stream.closed || stream.remoteEnded) return;
    stream.remoteEnded = true;
    // What a paused stream held of the connection's window is of no use to it now.
    if (stream.held > 0) this.creditConnection(stream.held);
    stream.held = 0;
    this.deliver(stream, () => stream.handlers.end());
  }

  protected onReset(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (f.streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on stream ${f.streamId}, never opened`);
    const stream = this.streams.get(f.streamId);
    if (!stream) return;
    const now = performance.now();
    this.resetAllowance = Math.min(RESET_BURST, this.resetAllowance + ((now - this.resetAllowanceAt) / 1_000) * RESETS_PER_SECOND);
    this.resetAllowanceAt = now;
    if (this.resetAllowance < 1) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `the caller reset more than ${RESET_BURST} open streams at a rate above ${RESETS_PER_SECOND}/s`);
    this.resetAllowance -= 1;
    this.finish(stream, { kind: 'reset', code: f.payload.readUInt32BE(0) });
  }

  protected onSettings(f: Frame): void {
    if (f.flags & Flag.ACK) return;
    for (const [id, value] of this.applySettings(f)) {
      if (id === Setting.ENABLE_PUSH && value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `ENABLE_PUSH of ${value}`);
    }
    this.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
  }

  /** The caller will open no more streams; the ones open finish as usual. */
  protected onGoaway(): void {
    this.draining = true;
    if (this.streams.size === 0) this.end();
  }

  private finish(stream: ServerStream, end: ServerStreamEnd): void {
    if (stream.closed) return;
    stream.markClosed();
    this.dirty.delete(stream);
    this.streams.delete(stream.id);
    if (stream.held > 0 && !this.destroyed) this.creditConnection(stream.held);
    stream.held = 0;
    try {
      stream.handlers.close(end);
    } catch (err) {
      process.emitWarning(`HTTP/2 server: a stream's close handler failed: ${(err as Error).message}`);
    }
    if (this.draining && this.streams.size === 0 && !this.destroyed) this.end();
  }

  /** Closes the socket after what is queued and `last` (once draining has nothing left, or after an HTTP/1 answer). */
  private end(last?: Buffer): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.endSocket(last);
    this.notifyClosed();
  }

  /** Ends the connection: GOAWAY with `code` when given, every open stream `failed`. */
  private fail(message: string, code?: number): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (code !== undefined && !this.socket.destroyed) {
      this.endSocket(frame(FrameType.GOAWAY, 0, 0, Buffer.concat([uint32Payload(this.lastStreamId, code), Buffer.from(message)])));
    } else {
      this.socket.destroy();
    }
    const open = [...this.streams.values()];
    this.streams.clear();
    this.dirty.clear();
    for (const stream of open) this.finish(stream, { kind: 'failed', message });
    this.notifyClosed();
  }
}
