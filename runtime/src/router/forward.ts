import * as http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import { ClientResponse } from './client-response';
import { RequestBody } from './request-body';
import { decodeGrpcMessage } from '../api/grpc-wire';

/** Upstream answered and the answer was relayed to the caller (whatever its status). */
export interface Relayed { readonly kind: 'relayed' }
/** Upstream failed before anything reached the caller: another copy may be tried. */
export interface NotRelayed { readonly kind: 'failed'; readonly code: status; readonly message: string; readonly connectFailure: boolean }
export type AttemptOutcome = Relayed | NotRelayed;

/** Statuses that say "this copy cannot serve", as opposed to an answer from the model. */
const RETRYABLE = new Set([status.UNAVAILABLE, status.NOT_FOUND]);

const { NGHTTP2_CANCEL } = http2.constants;
const END_STREAM = 0x1;

/** Response headers that must not be copied verbatim to the caller. */
const HOP_BY_HOP = new Set([':status', 'content-length']);

/**
 * One attempt: sends the call to `session` and pipes the answer to the caller. Resolves with 'failed' only while
 * nothing has been relayed, so the router may try another copy; once bytes flowed, every outcome is relayed.
 */
export interface ForwardOptions {
  /**
   * Hold the whole answer until its trailers arrive (up to this many bytes), so an upstream that dies mid-answer has
   * relayed nothing and the call can be retried. Only for calls known to be unary; 0 relays bytes as they come.
   */
  readonly holdBytes: number;
}

export function forwardOnce(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: RequestBody,
  replacement: Buffer | undefined, response: ClientResponse, canRetry: () => boolean,
  options: ForwardOptions): { outcome: Promise<AttemptOutcome>; cancel: () => void } {
  let upstream: http2.ClientHttp2Stream;
  try {
    upstream = session.request(headers, { endStream: false });
  } catch (err) {
    return {
      outcome: Promise.resolve({ kind: 'failed', code: status.UNAVAILABLE, message: (err as Error).message, connectFailure: true }),
      cancel: () => undefined,
    };
  }
  let relaying = false;
  let settled = false;
  const outcome = new Promise<AttemptOutcome>((resolve) => {
    const settle = (result: AttemptOutcome) => {
      if (settled) return;
      settled = true;
      body.detach();
      resolve(result);
    };
    const copyHeaders = (h: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders => {
      const out: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(h)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      return out;
    };
    const retryable = (h: http2.IncomingHttpHeaders) => RETRYABLE.has(Number(h['grpc-status'])) && canRetry();
    const giveBack = (h: http2.IncomingHttpHeaders) => {
      settle({ kind: 'failed', code: Number(h['grpc-status']), message: decodeGrpcMessage(String(h['grpc-message'] ?? '')), connectFailure: false });
      upstream.close(NGHTTP2_CANCEL);
    };
    // Response headers are held until the first message or the trailers arrive: an upstream that dies in between
    // has still relayed nothing, so the call can go to another copy.
    let heldHeaders: http2.OutgoingHttpHeaders | undefined;
    upstream.on('response', (h, flags) => {
      const trailersOnly = flags % 2 === END_STREAM || h['grpc-status'] !== undefined;
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
    });
    const held: Buffer[] = [];
    let heldBytes = 0;
    const startRelaying = () => {
      if (relaying) return;
      relaying = true;
      response.sendHeaders(heldHeaders ?? { ':status': 200, 'content-type': 'application/grpc' });
      for (const chunk of held.splice(0)) response.write(chunk);
    };
    upstream.on('data', (chunk: Buffer) => {
      if (!relaying && heldBytes + chunk.length <= options.holdBytes) {
        held.push(chunk);
        heldBytes += chunk.length;
        return;
      }
      startRelaying();
      if (!response.write(chunk)) {
        upstream.pause();
        response.stream.once('drain', () => upstream.resume());
      }
    });
    let trailers: http2.IncomingHttpHeaders | undefined;
    upstream.on('trailers', (t) => {
      trailers = t;
    });
    upstream.on('end', () => {
      if (settled) return;
      if (!relaying && trailers === undefined) return;
      if (!relaying && trailers && retryable(trailers)) {
        giveBack(trailers);
        return;
      }
      startRelaying();
      response.finish(trailers ? copyHeaders(trailers) : { 'grpc-status': String(status.INTERNAL), 'grpc-message': 'the upstream ended the call without a status' });
      settle({ kind: 'relayed' });
    });
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      if (settled) return;
      if (relaying) {
        response.finishWithStatus(status.UNAVAILABLE, 'the upstream reset the call while answering');
        settle({ kind: 'relayed' });
        return;
      }
      const code = upstream.rstCode ?? 0;
      settle({ kind: 'failed', code: status.UNAVAILABLE, message: `the upstream closed the call before answering (HTTP/2 code ${code})`, connectFailure: !upstream.id });
    });
    body.attach(upstream, replacement);
  });
  return {
    outcome,
    cancel: () => {
      if (!upstream.closed) upstream.close(NGHTTP2_CANCEL);
    },
  };
}
