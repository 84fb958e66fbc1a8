import { status } from '@grpc/grpc-js';
import { ClientResponse } from './client-response';
import { RequestBody } from './request-body';
import { decodeGrpcMessage } from '../api/grpc-wire';
import { ClientConnection, ResponseHeaders } from '../h2/client';
import { OutgoingHeaders } from '../h2/server';

/** Upstream answered and the answer was relayed to the caller (whatever its status). */
export interface Relayed { readonly kind: 'relayed' }
/** Upstream failed before anything reached the caller: another copy may be tried. */
export interface NotRelayed { readonly kind: 'failed'; readonly code: status; readonly message: string; readonly connectFailure: boolean }
export type AttemptOutcome = Relayed | NotRelayed;

/** Statuses that say "this copy cannot serve", as opposed to an answer from the model. */
const RETRYABLE = new Set([status.UNAVAILABLE, status.NOT_FOUND]);

/** Response headers that must not be copied verbatim to the caller. */
const HOP_BY_HOP = new Set([':status', 'content-length']);

/** Request headers as [name, value] pairs, pseudo-headers first. */
export type RequestHeaders = Array<[string, string]>;

export interface ForwardOptions {
  /**
   * Hold the whole answer until its trailers arrive (up to this many bytes), so an upstream that dies mid-answer has
   * relayed nothing and the call can be retried. Only for calls known to be unary; 0 relays bytes as they come.
   */
  readonly holdBytes: number;
}

function copyHeaders(h: ResponseHeaders): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  for (const k in h) if (!HOP_BY_HOP.has(k)) out[k] = h[k];
  return out;
}

const grpcStatusOf = (h: ResponseHeaders) => Number(h['grpc-status']);

/**
 * One attempt: sends the call over `connection` and pipes the answer to the caller. Resolves with 'failed' only
 * while nothing has been relayed, so the router may try another copy; once bytes flowed, every outcome is relayed.
 */
export function forwardOnce(connection: ClientConnection, headers: RequestHeaders, body: RequestBody,
  replacement: Buffer | undefined, response: ClientResponse, canRetry: () => boolean,
  options: ForwardOptions): { outcome: Promise<AttemptOutcome>; cancel: () => void } {
  const upstream = connection.request(headers);
  let relaying = false;
  let settled = false;
  const outcome = new Promise<AttemptOutcome>((resolve) => {
    const settle = (result: AttemptOutcome) => {
      if (settled) return;
      settled = true;
      body.detach();
      resolve(result);
    };
    const retryable = (h: ResponseHeaders) => RETRYABLE.has(grpcStatusOf(h)) && canRetry();
    const giveBack = (h: ResponseHeaders) => {
      settle({ kind: 'failed', code: grpcStatusOf(h), message: decodeGrpcMessage(String(h['grpc-message'] ?? '')), connectFailure: false });
      upstream.cancel();
    };
    // Response headers are held until the first message or the trailers arrive: an upstream that dies in between
    // has still relayed nothing, so the call can go to another copy.
    let heldHeaders: OutgoingHeaders | undefined;
    const held: Buffer[] = [];
    let heldBytes = 0;
    const startRelaying = () => {
      if (relaying) return;
      relaying = true;
      response.sendHeaders(heldHeaders ?? { ':status': 200, 'content-type': 'application/grpc' });
      for (const chunk of held.splice(0)) response.write(chunk);
    };
    let trailers: ResponseHeaders | undefined;
    upstream.handlers = {
      response: (h, endStream) => {
        const trailersOnly = endStream || h['grpc-status'] !== undefined;
        if (trailersOnly && retryable(h)) {
          giveBack(h);
          return;
        }
        if (trailersOnly) {
          relaying = true;
          response.finish({ ':status': 200, ...copyHeaders(h) });
          settle({ kind: 'relayed' });
          return;
        }
        heldHeaders = { ':status': 200, ...copyHeaders(h) };
      },
      data: (chunk) => {
        if (settled) return;
        if (!relaying && heldBytes + chunk.length <= options.holdBytes) {
          held.push(chunk);
          heldBytes += chunk.length;
          return;
        }
        startRelaying();
        if (!response.write(chunk)) {
          upstream.pause();
          response.stream.handlers.drain = () => upstream.resume();
        }
      },
      trailers: (t) => {
        trailers = t;
      },
      drain: () => body.drained(),
      close: (end) => {
        if (settled) return;
        if (end.kind === 'ended') {
          if (!relaying && trailers && retryable(trailers)) {
            giveBack(trailers);
            return;
          }
          startRelaying();
          response.finish(trailers ? copyHeaders(trailers) : { 'grpc-status': String(status.INTERNAL), 'grpc-message': 'the upstream ended the call without a status' });
          settle({ kind: 'relayed' });
          return;
        }
        if (relaying) {
          response.finishWithStatus(status.UNAVAILABLE, 'the upstream reset the call while answering');
          settle({ kind: 'relayed' });
          return;
        }
        const message = end.kind === 'reset' ? `the upstream closed the call before answering (HTTP/2 code ${end.code})`
          : end.kind === 'refused' || end.kind === 'failed' ? end.message : 'the call was cancelled';
        settle({ kind: 'failed', code: status.UNAVAILABLE, message, connectFailure: end.kind === 'refused' && end.connectFailure });
      },
    };
    body.attach(upstream, replacement);
  });
  return { outcome, cancel: () => upstream.cancel() };
}
