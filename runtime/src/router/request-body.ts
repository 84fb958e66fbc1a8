import { status } from '@grpc/grpc-js';
import { MeshError } from '../errors';
import { ServerStream } from '../h2/server';

/** Where the request bytes go: the upstream stream of the current attempt. */
export interface BodySink {
  /** False when the sink wants no more until its owner calls `RequestBody.drained`. */
  write(chunk: Buffer): boolean;
  end(): void;
}

/**
 * The caller's request bytes, read once and replayable: a unary request is kept whole so a failed attempt can be
 * retried on another copy. Frame headers are checked as they pass (message size limit); the bytes themselves are
 * never decoded here.
 */
export class RequestBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private failure: MeshError | undefined;
  /** Bytes left of the frame being read; negative while a frame header is incomplete. */
  private frameRemaining = 0;
  private headerBytes: number[] = [];
  private sink: BodySink | undefined;
  private readonly waiters: Array<() => void> = [];
  /** Past this many bytes the body is no longer kept, and the call can no longer be retried. */
  private replayable = true;
  /** Paused until a sink takes the bytes, because more arrived than is kept for replay. */
  private heldBack = false;
  /** Bytes received from the caller so far. */
  received = 0;

  constructor(private readonly stream: ServerStream, private readonly maxMessageSize: number) {
    stream.handlers.data = (chunk) => this.onData(chunk);
    stream.handlers.end = () => {
      this.ended = true;
      this.sink?.end();
      this.wake();
    };
  }

  /** The client has sent everything and all of it is kept: the call can be replayed to another upstream. */
  get canReplay(): boolean {
    return this.ended && this.replayable && this.failure === undefined;
  }

  get error(): MeshError | undefined {
    return this.failure;
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    for (const wake of this.waiters.splice(0)) wake();
  }

  private onData(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.failure) return;
    this.scanFrames(chunk);
    if (this.failure) return;
    if (this.replayable) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size > 2 * (this.maxMessageSize + 5)) {
        if (this.sink) {
          this.replayable = false;
          this.chunks.length = 0;
        } else {
          // Nowhere to send it yet (a load is under way): let HTTP/2 flow control hold the caller back.
          this.heldBack = true;
          this.stream.pause();
        }
      }
    }
    // The sink's owner calls `drained` when it may take more.
    if (this.sink && !this.sink.write(chunk)) this.stream.pause();
    this.wake();
  }

  /** Checks each frame's declared length against the limit, following frame boundaries across chunks. */
  private scanFrames(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.frameRemaining > 0) {
        const take = Math.min(this.frameRemaining, chunk.length - pos);
        this.frameRemaining -= take;
        pos += take;
        continue;
      }
      this.headerBytes.push(chunk[pos++]);
      if (this.headerBytes.length < 5) continue;
      const length = Buffer.from(this.headerBytes).readUInt32BE(1);
      this.headerBytes = [];
      if (length > this.maxMessageSize) {
        this.failure = new MeshError(status.RESOURCE_EXHAUSTED, `request message of ${length} bytes exceeds the limit of ${this.maxMessageSize} bytes (MM_SVC_GRPC_MAX_MSG_SIZE)`);
        this.wake();
        return;
      }
      this.frameRemaining = length;
    }
  }

  /** The caller has sent everything (or the body failed, or no more is taken until a sink attaches). */
  get isComplete(): boolean {
    return this.ended || this.failure !== undefined || this.heldBack;
  }

  /** Resolves once `isComplete`: a unary call then goes upstream in one write. */
  async complete(): Promise<void> {
    while (!this.isComplete) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Resolves with the first complete message (kept bytes must include it), or rejects if the request ends or fails first. */
  async firstMessage(): Promise<Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const all = Buffer.concat(this.chunks, this.size);
      if (all.length >= 5) {
        const length = all.readUInt32BE(1);
        if (all.length >= 5 + length) return all.subarray(5, 5 + length);
      }
      if (this.ended) throw new MeshError(status.INVALID_ARGUMENT, 'the request ended before its first message was complete');
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /**
   * Sends the request to `sink`: everything kept so far (or `replacement` instead of the first message), then
   * whatever arrives later. Only one sink at a time; a retry attaches the next one.
   */
  attach(sink: BodySink, replacement?: Buffer): void {
    this.sink = sink;
    let kept = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
    if (replacement) {
      const firstLength = kept.readUInt32BE(1);
      kept = Buffer.concat([replacement, kept.subarray(5 + firstLength)]);
    }
    if (kept.length > 0) sink.write(kept);
    if (this.ended) sink.end();
    if (this.size > 2 * (this.maxMessageSize + 5)) {
      this.replayable = false;
      this.chunks.length = 0;
      this.stream.resume();
    }
  }

  /** The sink has room again after a write returned false. */
  drained(): void {
    this.stream.resume();
  }

  detach(): void {
    this.sink = undefined;
    this.stream.resume();
  }
}
