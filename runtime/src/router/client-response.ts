import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { status } from '@grpc/grpc-js';
import { GRPC_CONTENT_TYPE, encodeGrpcMessage } from '../api/grpc-wire';

/**
 * The response side of one data-plane call: headers once, data, then trailers — or a trailers-only status when
 * nothing was sent yet. Whatever happens, the call ends exactly once.
 */
export class ClientResponse {
  private trailers: OutgoingHttpHeaders = { 'grpc-status': String(status.INTERNAL), 'grpc-message': 'upstream ended without a status' };
  private finished = false;
  /** The gRPC status the caller was given; a call that closed before the mesh answered was cancelled by the caller. */
  statusCode: number = status.CANCELLED;
  /** Response body bytes written to the caller. */
  bytesSent = 0;

  constructor(readonly stream: ServerHttp2Stream) {}

  get done(): boolean {
    return this.finished || this.stream.destroyed || this.stream.closed;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  sendHeaders(headers: OutgoingHttpHeaders): void {
    if (this.done || this.stream.headersSent) return;
    this.stream.respond(headers, { waitForTrailers: true });
    this.stream.once('wantTrailers', () => {
      if (!this.stream.destroyed) this.stream.sendTrailers(this.trailers);
    });
  }

  /** Writes response bytes; returns false when the caller should wait for 'drain'. */
  write(chunk: Buffer): boolean {
    if (this.done) return true;
    this.bytesSent += chunk.length;
    return this.stream.write(chunk);
  }

  /** Ends the call with upstream's trailers (or the given status). */
  finish(trailers: OutgoingHttpHeaders): void {
    if (this.done) return;
    this.finished = true;
    const code = Number(trailers['grpc-status']);
    this.statusCode = Number.isInteger(code) ? code : status.UNKNOWN;
    if (!this.stream.headersSent) {
      this.stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE, ...trailers }, { endStream: true });
      return;
    }
    this.trailers = trailers;
    this.stream.end();
  }

  finishWithStatus(code: status, message: string, extra: OutgoingHttpHeaders = {}): void {
    this.finish({ 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message), ...extra });
  }
}
