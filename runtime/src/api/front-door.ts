import * as net from 'node:net';
import * as tls from 'node:tls';
import { status } from '@grpc/grpc-js';
import { IncomingHeaders, ServerConnection, ServerStream } from '../h2/server';
import { Logger } from '../log';
import { respondWithStatus } from './grpc-wire';
import { UnaryMethod, serveUnary } from './unary';

/**
 * The front door on MM_SVC_GRPC_PORT: one HTTP/2 server (plaintext, or TLS with ALPN h2), on the mesh's own HTTP/2
 * implementation (`h2/server`). Paths of the management API and health are served here; every other path goes to
 * the data plane, which forwards the stream's bytes without decoding them. Connection-level garbage only ends that
 * connection.
 */

/** Serves one call. Its handlers must be set before it returns (request bytes are not kept for later). */
export type StreamHandler = (stream: ServerStream, headers: IncomingHeaders) => void;

export interface FrontDoorOptions {
  /** Unary methods served here, keyed by `/package.Service/Method`. */
  readonly methods: ReadonlyMap<string, UnaryMethod>;
  /** Everything else; without it, other paths are UNIMPLEMENTED. */
  readonly dataPlane?: StreamHandler;
  readonly maxMessageSize: number;
  /** Concurrent streams per connection. @default 1000 */
  readonly maxConcurrentStreams?: number;
  /** Largest header block accepted, in bytes. @default 16384 */
  readonly maxHeaderListSize?: number;
  /**
   * Connections with no call open and no traffic for this long are closed, freeing what idle clients hold.
   * @default 300000
   */
  readonly idleTimeoutMs?: number;
  /** Serve TLS (h2 only) with these options. @default plaintext */
  readonly tls?: SecureServerOptions;
  readonly log: Logger;
}

/** What the front door needs for TLS. */
export type SecureServerOptions = tls.SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };

export interface FrontDoor {
  readonly port: number;
  /** Swaps the certificate for new connections (TLS only). */
  setSecureContext(options: tls.SecureContextOptions): void;
  /** Stops accepting, lets open streams finish for up to `graceMs`, then closes what is left. */
  close(graceMs?: number): Promise<void>;
}

export async function startFrontDoor(o: FrontDoorOptions, host: string, port: number): Promise<FrontDoor> {
  const connections = new Set<ServerConnection>();
  const serve = (stream: ServerStream) => {
    const headers = stream.headers;
    const path = String(headers[':path']);
    if (headers[':method'] !== 'POST' || !String(headers['content-type'] ?? '').startsWith('application/grpc')) {
      stream.respond({ ':status': 415, 'content-type': 'text/plain' });
      stream.write('this port speaks gRPC (POST, content-type application/grpc); KServe v2 REST is on MM_REST_PORT\n');
      stream.end();
      return;
    }
    const method = o.methods.get(path);
    if (method) serveUnary(stream, headers, method, o.maxMessageSize, o.log);
    else if (o.dataPlane) o.dataPlane(stream, headers);
    else respondWithStatus(stream, status.UNIMPLEMENTED, `method ${path} is not served here`);
  };
  const accept = (socket: net.Socket) => {
    const connection = new ServerConnection(socket, {
      maxConcurrentStreams: o.maxConcurrentStreams ?? 1_000,
      maxHeaderListSize: o.maxHeaderListSize ?? 16_384,
      onStream: serve,
      // A broken connection is that connection's problem.
      onError: (err) => o.log.debug('connection error', { err }),
    });
    connections.add(connection);
    connection.onClose(() => connections.delete(connection));
    socket.setTimeout(o.idleTimeoutMs ?? 300_000, () => {
      // A quiet stream (a call waiting for a load, an idle bidi stream) keeps its connection.
      if (connection.activeStreams === 0) connection.destroy();
    });
  };
  const secure = o.tls ? tls.createServer({ ...o.tls, ALPNProtocols: ['h2'] }, (socket) => {
    // HTTP/2 only: a client that did not agree to h2 would not understand the answer.
    if (socket.alpnProtocol !== 'h2') {
      socket.destroy();
      return;
    }
    accept(socket);
  }) : undefined;
  if (secure) secure.on('tlsClientError', (err) => o.log.debug('TLS handshake failed', { err }));
  const server: net.Server = secure ?? net.createServer(accept);
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      server.on('error', (err) => o.log.error('front door error', { err }));
      resolve((server.address() as net.AddressInfo).port);
    });
  });
  return {
    port: bound,
    setSecureContext: (options) => secure?.setSecureContext(options),
    close: (graceMs = 5_000) => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const connection of connections) connection.close();
      const force = setTimeout(() => {
        for (const connection of connections) connection.destroy();
      }, graceMs);
      force.unref();
    }),
  };
}
