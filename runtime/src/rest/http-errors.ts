import { status } from '@grpc/grpc-js';
import { toMeshError } from '../errors';

/**
 * How failures look over REST: an HTTP status and a `{"error": "..."}` body. gRPC statuses (ours or the backend's)
 * map to HTTP statuses in one place; HTTP-only conditions (405, 413, …) are RestErrors.
 */

export class RestError extends Error {
  constructor(
    public readonly httpStatus: number,
    message: string,
    /** Extra response headers, e.g. Allow for 405. */
    public readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'RestError';
  }
}

const HTTP_STATUS_FOR_GRPC: ReadonlyMap<status, number> = new Map([
  [status.INVALID_ARGUMENT, 400],
  [status.NOT_FOUND, 404],
  [status.RESOURCE_EXHAUSTED, 429],
  [status.UNIMPLEMENTED, 501],
  [status.UNAVAILABLE, 503],
  [status.DEADLINE_EXCEEDED, 504],
]);

export function httpStatusForGrpc(code: status): number {
  return HTTP_STATUS_FOR_GRPC.get(code) ?? 500;
}

/** Any thrown value → the HTTP status, message and headers to answer with. */
export function restErrorOf(err: unknown): RestError {
  if (err instanceof RestError) return err;
  const mesh = toMeshError(err);
  return new RestError(httpStatusForGrpc(mesh.code), mesh.message);
}
