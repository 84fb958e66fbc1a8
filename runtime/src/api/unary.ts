import { status } from '@grpc/grpc-js';
import { MeshError, toMeshError } from '../errors';
import { IncomingHeaders, ServerStream } from '../h2/server';
import { Logger } from '../log';
import { GRPC_CONTENT_TYPE, frameMessage, parseGrpcTimeout, readFrame, respondWithStatus } from './grpc-wire';

/**
 * Unary gRPC methods served directly on the front door's HTTP/2 streams (the management API and health), with the
 * generated codecs. The body is read up to the message size limit, decoded, handled, and answered with one message
 * and an OK status, or with the handler's MeshError status.
 */

export interface UnaryMethod {
  readonly name: string;
  readonly handle: (request: Buffer, headers: IncomingHeaders) => Promise<Buffer>;
}

/** Adapts a typed handler to raw bytes using a generated grpc-js method definition's codecs. */
export function unaryMethod<Req, Res>(name: string, definition: { requestDeserialize(b: Buffer): Req; responseSerialize(v: Res): Buffer },
  handler: (request: Req, headers: IncomingHeaders) => Promise<Res> | Res): UnaryMethod {
  return {
    name,
    handle: async (bytes, headers) => {
      let request: Req;
      try {
        request = definition.requestDeserialize(bytes);
      } catch (err) {
        throw new MeshError(status.INVALID_ARGUMENT, `${name}: the request is not a valid protobuf message (${(err as Error).message})`);
      }
      return definition.responseSerialize(await handler(request, headers));
    },
  };
}

export function serveUnary(stream: ServerStream, headers: IncomingHeaders, method: UnaryMethod, maxMessageSize: number, log: Logger): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const fail = (code: status, message: string) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    respondWithStatus(stream, code, message);
  };
  const timeoutMs = parseGrpcTimeout(headers['grpc-timeout']);
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => fail(status.DEADLINE_EXCEEDED, `${method.name}: deadline exceeded`), timeoutMs);
  stream.handlers.data = (chunk) => {
    if (done) return;
    size += chunk.length;
    if (size > maxMessageSize + 5) {
      fail(status.RESOURCE_EXHAUSTED, `${method.name}: request larger than the limit of ${maxMessageSize} bytes`);
      return;
    }
    chunks.push(chunk);
  };
  stream.handlers.end = () => {
    if (done) return;
    const frame = readFrame(Buffer.concat(chunks, size), maxMessageSize);
    if (frame.kind === 'incomplete') {
      fail(status.INTERNAL, `${method.name}: the request ended before a complete message`);
      return;
    }
    if (frame.kind === 'error') {
      fail(frame.code, `${method.name}: ${frame.message}`);
      return;
    }
    method.handle(Buffer.from(frame.message.buffer, frame.message.byteOffset, frame.message.byteLength), headers).then((response) => {
      if (done || stream.closed) return;
      done = true;
      clearTimeout(timer);
      stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE });
      stream.write(frameMessage(response));
      stream.end({ 'grpc-status': '0' });
    }, (err: unknown) => {
      const e = toMeshError(err);
      if (e.code === status.INTERNAL || e.code === status.UNKNOWN) log.error('call failed', { method: method.name, err: e });
      fail(e.code, e.message);
    });
  };
  stream.handlers.close = () => {
    done = true;
    clearTimeout(timer);
  };
}
