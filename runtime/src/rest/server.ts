import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { RoutingHeaders } from '../../../lib/contract';
import type { ModelMetadataResponse, ServerMetadataResponse } from '../../../proto/gen/grpc_predict_v2';
import type { SecureServerOptions } from '../api/front-door';
import { Logger } from '../log';
import { parseJsonBody, readBody } from './body';
import { RestError, restErrorOf } from './http-errors';
import { CallContext, InferenceClient } from './inference-client';
import { Route, matchRoute } from './routes';
import { inferRequestFromJson, inferResponseToJson } from './tensors';

/**
 * KServe v2 REST (Open Inference Protocol) on node:http, translating each call to one inference.GRPCInferenceService
 * call on `grpcTarget` over a persistent channel. In the mesh that target is its own front door on loopback, so REST
 * requests are routed, loaded and retried exactly like gRPC ones.
 */

export interface RestServerOptions {
  /** Port to listen on; 0 picks a free one (see RestServer.port). */
  readonly port: number;
  /** Address to bind. @default '0.0.0.0' */
  readonly host?: string;
  /** host:port of a gRPC endpoint serving inference.GRPCInferenceService. */
  readonly grpcTarget: string;
  /** Largest request body accepted; larger ones get 413. @default 16 MiB */
  readonly maxBodyBytes?: number;
  /** Largest gRPC response accepted from the target. @default 64 MiB */
  readonly maxResponseBytes?: number;
  /** Deadline of each gRPC call made for a REST request. @default 60000 */
  readonly requestTimeoutMs?: number;
  readonly log: Logger;
  /** Answers GET /v2/health/ready. @default always ready */
  readonly isReady?: () => boolean | Promise<boolean>;
  /**
   * Metadata key that carries the URL's model name. The mesh reads `mm-model-name` as a vmodel id falling back to a
   * model id; a runtime called directly wants `mm-model-id`. @default 'mm-model-name'
   */
  readonly modelHeader?: string;
  /** Answer GET /v2 with this instead of asking the target (the mesh describes itself). */
  readonly serverMetadata?: ServerMetadataResponse;
  /** Send inputs as raw_input_contents rather than typed contents (FP16 inputs always are). @default false */
  readonly rawInputContents?: boolean;
  /** Serve HTTPS with these options. @default plain HTTP */
  readonly tls?: SecureServerOptions;
  /** Credentials of the calls to `grpcTarget`. @default plaintext */
  readonly grpcCredentials?: ChannelCredentials;
}

export interface RestServer {
  /** The bound port. */
  readonly port: number;
  /** Swaps the certificate for new connections (HTTPS only). */
  setSecureContext(options: SecureContextOptions): void;
  /** Stops accepting, lets requests in progress finish for up to `graceMs`, then closes what is left and the channel. */
  close(graceMs?: number): Promise<void>;
}

const MiB = 1024 * 1024;
/** Request line and headers together; larger ones get 431 (KServe v2 requests need a few hundred bytes). */
export const MAX_HEADER_BYTES = 16 * 1024;
const JSON_TYPE = 'application/json';

export async function startRestServer(options: RestServerOptions): Promise<RestServer> {
  const log = options.log;
  const maxBodyBytes = options.maxBodyBytes ?? 16 * MiB;
  const isReady = options.isReady ?? (() => true);
  const backend = new InferenceClient({
    target: options.grpcTarget,
    modelHeader: options.modelHeader ?? RoutingHeaders.MODEL_NAME,
    timeoutMs: options.requestTimeoutMs ?? 60_000,
    maxResponseBytes: options.maxResponseBytes ?? 64 * MiB,
    credentials: options.grpcCredentials,
  });

  async function serve(req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal): Promise<void> {
    const match = matchRoute(req.method ?? '', req.url ?? '');
    switch (match.outcome) {
      case 'route': break;
      case 'badRequest': throw new RestError(400, match.message);
      case 'notFound': throw new RestError(404, match.message);
      case 'methodNotAllowed': throw new RestError(405, match.message, { allow: match.allow.join(', ') });
    }
    const route: Route = match.route;
    switch (route.kind) {
      case 'serverLive':
        return send(res, 200, { live: true });
      case 'serverReady': {
        const ready = await isReady();
        return send(res, ready ? 200 : 503, { ready });
      }
      case 'serverMetadata': {
        const { name, version, extensions } = options.serverMetadata ?? await backend.serverMetadata({ signal });
        return send(res, 200, { name, version, extensions });
      }
      case 'modelMetadata': {
        const context: CallContext = { model: route.model, signal };
        return send(res, 200, metadataJson(await backend.modelMetadata(route.model, route.version, context)));
      }
      case 'modelReady': {
        // Not ready is 503 and an unknown model the target's NOT_FOUND (404), as KServe's servers answer.
        const ready = await backend.modelReady(route.model, route.version, { model: route.model, signal });
        if (!ready) throw new RestError(503, `model ${route.model} is not ready`);
        return send(res, 200, { name: route.model, ready: true });
      }
      case 'infer': {
        if (req.headers['inference-header-content-length'] !== undefined) {
          throw new RestError(400, 'the binary tensor data extension (Inference-Header-Content-Length) is not supported; send JSON');
        }
        const encoding = req.headers['content-encoding'];
        if (encoding !== undefined && encoding !== 'identity') throw new RestError(415, `content-encoding ${encoding} is not supported`);
        const body = parseJsonBody(await readBody(req, res, maxBodyBytes));
        const request = inferRequestFromJson(body, route, { rawInputContents: options.rawInputContents });
        const response = await backend.infer(request, { model: route.model, signal });
        return send(res, 200, inferResponseToJson(response));
      }
    }
  }

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = process.hrtime.bigint();
    const aborter = new AbortController();
    // The HTTP client left before the answer: cancel the gRPC call made for it.
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.debug('rest request', { method: req.method, url: req.url, status: res.statusCode, ms });
    });
    serve(req, res, aborter.signal).catch((err: unknown) => {
      const error = restErrorOf(err);
      // Our own 5xx answers (a model not ready) are expected; failures of the target are worth a warning.
      if (error.httpStatus >= 500 && !(err instanceof RestError)) log.warn('rest request failed', { method: req.method, url: req.url, status: error.httpStatus, err: error });
      // A body we did not read to the end is not worth draining: close the connection after answering.
      const close: Record<string, string> = req.complete ? {} : { connection: 'close' };
      send(res, error.httpStatus, { error: error.message }, { ...error.headers, ...close });
    }).catch((err: unknown) => log.error('rest response failed', { err }));
  };

  // Set here rather than left to node's --max-http-header-size, which NODE_OPTIONS could raise for every server.
  const limits = { maxHeaderSize: MAX_HEADER_BYTES };
  const secure = options.tls ? https.createServer({ ...options.tls, ...limits }, onRequest) : undefined;
  const server: http.Server = secure ?? http.createServer(limits, onRequest);
  // Requests with `Expect: 100-continue` take the same path; readBody sends the 100 only when it wants the body.
  server.on('checkContinue', onRequest);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug('rest connection error', { err });
    const answer = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (err.code !== 'ECONNRESET' && socket.writable) socket.end(`HTTP/1.1 ${answer}\r\nconnection: close\r\n\r\n`);
    else socket.destroy();
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      server.on('error', (err) => log.error('rest server error', { err }));
      resolve((server.address() as AddressInfo).port);
    });
  }).catch((err: unknown) => {
    backend.close();
    throw err;
  });
  log.info('KServe v2 REST listening', { port, grpcTarget: options.grpcTarget });

  return {
    port,
    setSecureContext: (tlsOptions) => secure?.setSecureContext(tlsOptions),
    close: (graceMs = 5_000) => new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        backend.close();
        resolve();
      });
      server.closeIdleConnections();
    }),
  };
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, { ...headers, 'content-type': JSON_TYPE, 'content-length': String(payload.length) });
  res.end(payload);
}

function metadataJson(metadata: ModelMetadataResponse): unknown {
  const tensor = ({ name, datatype, shape }: { name: string; datatype: string; shape: number[] }) => ({ name, datatype, shape });
  return {
    name: metadata.name,
    versions: metadata.versions,
    platform: metadata.platform,
    inputs: metadata.inputs.map(tensor),
    outputs: metadata.outputs.map(tensor),
  };
}
