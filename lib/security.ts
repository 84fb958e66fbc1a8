import { k8s } from 'cdk8s-plus-28';

/**
 * Security settings that make every synthesized pod pass the Kubernetes "restricted" Pod Security Standard:
 * non-root, no privilege escalation, all capabilities dropped, seccomp `RuntimeDefault`.
 */

/** The user the pods run as unless a container says otherwise (the upstream adapter image's user). */
export const DEFAULT_USER_ID = 2000;

/** Pod-level security context: non-root, RuntimeDefault seccomp, and a group that owns the writable volumes. */
export function restrictedPodSecurityContext(userId = DEFAULT_USER_ID): k8s.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: userId,
    runAsGroup: userId,
    fsGroup: userId,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Container-level security context for the restricted profile. */
export function restrictedContainerSecurityContext(options: {
  /** Keep the root filesystem read-only. @default true */
  readonly readOnlyRootFilesystem?: boolean;
  /** User id, when it differs from the pod's. @default - the pod's */
  readonly runAsUser?: number;
} = {}): k8s.SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    privileged: false,
    readOnlyRootFilesystem: options.readOnlyRootFilesystem ?? true,
    runAsNonRoot: true,
    ...(options.runAsUser === undefined ? {} : { runAsUser: options.runAsUser }),
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
