import type { IncomingMessage, ServerResponse } from 'node:http';
import { RestError } from './http-errors';

/**
 * Reads a request body up to `maxBytes`. A declared Content-Length over the limit is refused before any byte is
 * read (and, for `Expect: 100-continue`, before the client sends it); a chunked body is refused as soon as it passes
 * the limit, so an oversized body is never held whole.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<Buffer> {
  const tooLarge = (size: string) => new RestError(413, `the request body is ${size}, over the limit of ${maxBytes} bytes`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.reject(tooLarge(`${declared} bytes`));
  if (/^100-continue$/i.test(req.headers.expect ?? '')) res.writeContinue();

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanUp = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanUp();
        chunks.length = 0;
        reject(tooLarge(`more than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanUp();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanUp();
      reject(new RestError(400, `reading the request body failed: ${err.message}`));
    };
    const onAborted = () => onError(new Error('the client closed the connection'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** Parses a JSON body, saying what is wrong with it when it is not JSON. */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw new RestError(400, 'the request body is empty; send a JSON inference request');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new RestError(400, `the request body is not valid JSON: ${(err as Error).message}`);
  }
}
