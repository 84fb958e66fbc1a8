import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { status } from '@grpc/grpc-js';
import { Logger } from '../log';
import { respondWithStatus } from './grpc-wire';
import { UnaryMethod, serveUnary } from './unary';

/**
 * The front door on MM_SVC_GRPC_PORT: one plaintext HTTP/2 server. Paths of the management API and health are
 * served here; every other path goes to the data plane, which forwards the stream's bytes without decoding them.
 * Connection-level garbage only ends that connection.
 */

export type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

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
   * Connections with no call open and no traffic for this long are closed. Besides freeing idle clients this bounds a
   * node:http2 leak: some malformed connections are never closed after the client has gone.
   * @default 300000
   */
  readonly idleTimeoutMs?: number;
  /** Serve TLS (h2 only) with these options. @default plaintext */
  readonly tls?: SecureServerOptions;
  readonly log: Logger;
}

/** What the front door needs for TLS. */
export type SecureServerOptions = SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };

export interface FrontDoor {
  readonly port: number;
  /** Swaps the certificate for new connections (TLS only). */
  setSecureContext(options: SecureContextOptions): void;
  /** Stops accepting, lets open streams finish for up to `graceMs`, then closes what is left. */
  close(graceMs?: number): Promise<void>;
}

export async function startFrontDoor(o: FrontDoorOptions, host: string, port: number): Promise<FrontDoor> {
  const sessions = new Set<http2.ServerHttp2Session>();
  const settings = { maxConcurrentStreams: o.maxConcurrentStreams ?? 1_000, maxHeaderListSize: o.maxHeaderListSize ?? 16_384 };
  const secure = o.tls ? http2.createSecureServer({ ...o.tls, settings, maxSessionMemory: 64, allowHTTP1: false }) : undefined;
  const server: http2.Http2Server | http2.Http2SecureServer = secure ?? http2.createServer({ settings, maxSessionMemory: 64 });
  // Answers go out as several small writes (headers, data, trailers): Nagle's algorithm would hold all but the first
  // until the caller's ACK, which costs a round trip per call.
  server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
  const openStreams = new WeakMap<http2.Http2Session, number>();
  server.on('session', (session) => {
    sessions.add(session);
    openStreams.set(session, 0);
    session.on('close', () => sessions.delete(session));
    session.setTimeout(o.idleTimeoutMs ?? 300_000, () => {
      // A quiet stream (a call waiting for a load, an idle bidi stream) keeps its connection.
      if ((openStreams.get(session) ?? 0) === 0) session.destroy();
    });
    // A broken connection is that connection's problem; without a listener it would crash the process.
    session.on('error', (err) => o.log.debug('connection error', { err }));
  });
  server.on('sessionError', (err) => o.log.debug('connection error', { err }));
  server.on('stream', (stream, headers) => {
    stream.on('error', (err) => o.log.debug('stream error', { err }));
    const session = stream.session;
    if (session) {
      openStreams.set(session, (openStreams.get(session) ?? 0) + 1);
      stream.once('close', () => openStreams.set(session, (openStreams.get(session) ?? 1) - 1));
    }
    const path = headers[':path'] ?? '';
    if (headers[':method'] !== 'POST' || !String(headers['content-type'] ?? '').startsWith('application/grpc')) {
      if (!stream.headersSent && !stream.destroyed) stream.respond({ ':status': 415, 'content-type': 'text/plain' }, { endStream: false });
      if (!stream.destroyed) stream.end('this port speaks gRPC (POST, content-type application/grpc); KServe v2 REST is on MM_REST_PORT\n');
      return;
    }
    const method = o.methods.get(path);
    if (method) serveUnary(stream, headers, method, o.maxMessageSize, o.log);
    else if (o.dataPlane) o.dataPlane(stream, headers);
    else respondWithStatus(stream, status.UNIMPLEMENTED, `method ${path} is not served here`);
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      server.on('error', (err) => o.log.error('front door error', { err }));
      resolve((server.address() as { port: number }).port);
    });
  });
  return {
    port: bound,
    setSecureContext: (options) => secure?.setSecureContext(options),
    close: (graceMs = 5_000) => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const session of sessions) session.close();
      const force = setTimeout(() => {
        for (const session of sessions) session.destroy();
      }, graceMs);
      force.unref();
    }),
  };
}
