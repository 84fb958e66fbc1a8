import type { sendUnaryData } from '@grpc/grpc-js';
import { MeshError, toMeshError } from '../../src/errors';

/** The `{ code, details }` grpc-js sends as the call's status. */
export function statusOf(err: unknown): { code: number; details: string } {
  const error: MeshError = toMeshError(err);
  return { code: error.code, details: error.message };
}

/** Runs a handler body and reports its result or its MeshError through a unary callback. */
export function answer<T>(callback: sendUnaryData<T>, produce: () => T): void {
  let value: T;
  try {
    value = produce();
  } catch (err) {
    callback(statusOf(err));
    return;
  }
  callback(null, value);
}

/** Like `answer`, for handlers that wait. */
export function settle<T>(callback: sendUnaryData<T>, produce: () => Promise<T>): void {
  let pending: Promise<T>;
  try {
    pending = produce();
  } catch (err) {
    callback(statusOf(err));
    return;
  }
  pending.then((value) => callback(null, value), (err: unknown) => callback(statusOf(err)));
}
