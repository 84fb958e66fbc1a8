import { IConstruct } from 'constructs';

/**
 * Throws an error that names the construct path and the offending field, e.g.
 * `mesh/etcd: replicas must be odd (1, 3, 5…) to keep a quorum; got 2`.
 */
export function invalid(scope: IConstruct, field: string, message: string): never {
  throw new Error(problem(scope, field, message));
}

/** The message `invalid` throws, for `node.addValidation` results. */
export function problem(scope: IConstruct, field: string, message: string): string {
  return `${scope.node.path}: ${field} ${message}`;
}

/** Kubernetes object and label names: lowercase alphanumerics, '-' and '.', starting and ending alphanumeric. */
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Checks a name that becomes (part of) a Kubernetes object name or label value. */
export function checkName(scope: IConstruct, field: string, value: string, maxLength = 63): void {
  if (!DNS_NAME.test(value) || value.length > maxLength) {
    invalid(scope, field, `must be lowercase letters, digits, '-' or '.', start and end with a letter or digit, and have at most ${maxLength} characters; got "${value}"`);
  }
}
