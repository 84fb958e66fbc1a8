import { status } from '@grpc/grpc-js';
import { GRPC_CONTENT_TYPE, encodeGrpcMessage } from '../api/grpc-wire';
import { OutgoingHeaders, ServerStream } from '../h2/server';

/**
 * The response side of one data-plane call: headers once, data, then trailers — or a trailers-only status when
 * nothing was sent yet. Whatever happens, the call ends exactly once.
 */
export class ClientResponse {
  private finished = false;
  /** The gRPC status the caller was given; a call that closed before the mesh answered was cancelled by the caller. */
  statusCode: number = status.CANCELLED;
  /** Response body bytes written to the caller. */
  bytesSent = 0;

  constructor(readonly stream: ServerStream) {}

  get done(): boolean {
    return this.finished || this.stream.closed;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  sendHeaders(headers: OutgoingHeaders): void {
    if (this.done || this.stream.headersSent) return;
    this.stream.respond(headers);
  }

  /** Writes response bytes; returns false when the caller should wait for 'drain'. */
  write(chunk: Buffer): boolean {
    if (this.done) return true;
    this.bytesSent += chunk.length;
    return this.stream.write(chunk);
  }

  /** Ends the call with upstream's trailers (or the given status). */
  finish(trailers: OutgoingHeaders): void {
    if (this.done) return;
    this.finished = true;
    const code = Number(trailers['grpc-status']);
    this.statusCode = Number.isInteger(code) ? code : status.UNKNOWN;
    if (!this.stream.headersSent) {
      this.stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE, ...trailers }, true);
      return;
    }
    this.stream.end(trailers);
  }

  finishWithStatus(code: status, message: string, extra: OutgoingHeaders = {}): void {
    this.finish({ 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message), ...extra });
  }
}
