import { status } from '@grpc/grpc-js';

/**
 * The one error vocabulary of the mesh: a gRPC status code, a message a person can act on, and whether trying
 * again elsewhere may help. Every module throws these (or lets `toMeshError` translate foreign errors), so the API
 * layer maps errors to statuses in one place and the router's retry rule is `err.retryable`.
 */
export class MeshError extends Error {
  constructor(
    public readonly code: status,
    message: string,
    /** A retry on another copy or instance may succeed. */
    public readonly retryable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MeshError';
  }
}

export const invalidArgument = (message: string) => new MeshError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string) => new MeshError(status.NOT_FOUND, message);
export const alreadyExists = (message: string) => new MeshError(status.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string) => new MeshError(status.FAILED_PRECONDITION, message);
export const resourceExhausted = (message: string) => new MeshError(status.RESOURCE_EXHAUSTED, message);
export const deadlineExceeded = (message: string) => new MeshError(status.DEADLINE_EXCEEDED, message);
export const unavailable = (message: string, cause?: unknown) => new MeshError(status.UNAVAILABLE, message, true, { cause });
export const internal = (message: string, cause?: unknown) => new MeshError(status.INTERNAL, message, false, { cause });

/** gRPC errors as grpc-js reports them (ServiceError). */
interface GrpcLikeError { code?: unknown; details?: unknown; message?: unknown }

/** Wraps anything thrown into a MeshError, keeping a gRPC status code when the error carries one. */
export function toMeshError(err: unknown, context?: string): MeshError {
  if (err instanceof MeshError) return err;
  const e = (err ?? {}) as GrpcLikeError;
  const prefix = context ? `${context}: ` : '';
  if (typeof e.code === 'number' && e.code >= 0 && e.code <= 16) {
    const details = typeof e.details === 'string' && e.details ? e.details : String(e.message ?? 'unknown error');
    const code = e.code as status;
    return new MeshError(code, `${prefix}${details}`, code === status.UNAVAILABLE, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return internal(`${prefix}${message}`, err);
}
