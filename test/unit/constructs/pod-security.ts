/**
 * The Kubernetes Pod Security Standards, "restricted" profile (which includes "baseline"), checked on a pod spec.
 * Returns one line per violation, naming the container and field.
 */

type Json = Record<string, any>;

const ALLOWED_VOLUME_TYPES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);
const SAFE_SYSCTLS = new Set(['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes']);

/** Restricted-profile violations of a pod spec. */
export function restrictedViolations(pod: Json): string[] {
  const problems: string[] = [];
  const podContext: Json = pod.securityContext ?? {};
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
    if (pod[field] === true) problems.push(`pod: ${field} must not be true`);
  }
  for (const volume of pod.volumes ?? []) {
    const types = Object.keys(volume).filter((key) => key !== 'name');
    for (const type of types) if (!ALLOWED_VOLUME_TYPES.has(type)) problems.push(`volume ${volume.name}: type ${type} is not allowed`);
  }
  for (const sysctl of podContext.sysctls ?? []) {
    if (!SAFE_SYSCTLS.has(sysctl.name)) problems.push(`pod: sysctl ${sysctl.name} is not allowed`);
  }
  if (podContext.runAsUser === 0) problems.push('pod: runAsUser must not be 0');
  if (podContext.seccompProfile && !['RuntimeDefault', 'Localhost'].includes(podContext.seccompProfile.type)) {
    problems.push('pod: seccompProfile.type must be RuntimeDefault or Localhost');
  }
  if (podContext.seLinuxOptions?.user || podContext.seLinuxOptions?.role) problems.push('pod: seLinuxOptions user/role must not be set');

  const containers: Json[] = [...(pod.initContainers ?? []), ...(pod.containers ?? []), ...(pod.ephemeralContainers ?? [])];
  for (const container of containers) {
    const where = `container ${container.name}`;
    const context: Json = container.securityContext ?? {};
    if (context.privileged === true) problems.push(`${where}: privileged must not be true`);
    for (const port of container.ports ?? []) if (port.hostPort) problems.push(`${where}: hostPort ${port.hostPort} is not allowed`);
    if (context.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation must be false`);
    const drop: string[] = context.capabilities?.drop ?? [];
    if (!drop.includes('ALL')) problems.push(`${where}: capabilities.drop must include ALL`);
    for (const added of context.capabilities?.add ?? []) {
      if (added !== 'NET_BIND_SERVICE') problems.push(`${where}: capability ${added} must not be added`);
    }
    const nonRoot = context.runAsNonRoot ?? podContext.runAsNonRoot;
    if (nonRoot !== true) problems.push(`${where}: runAsNonRoot must be true (container or pod)`);
    if (context.runAsUser === 0) problems.push(`${where}: runAsUser must not be 0`);
    const seccomp = context.seccompProfile?.type ?? podContext.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${where}: seccompProfile must be RuntimeDefault or Localhost`);
    if (context.procMount !== undefined && context.procMount !== 'Default') problems.push(`${where}: procMount must be Default`);
    if (context.seLinuxOptions?.user || context.seLinuxOptions?.role) problems.push(`${where}: seLinuxOptions user/role must not be set`);
  }
  return problems;
}

/** This project's own rules on top of the standard: resources set, read-only root filesystem unless declared, no token. */
export function projectViolations(pod: Json, writableRootAllowed: ReadonlySet<string> = new Set()): string[] {
  const problems: string[] = [];
  if (pod.automountServiceAccountToken !== false) problems.push('pod: automountServiceAccountToken must be false');
  for (const container of pod.containers ?? []) {
    const where = `container ${container.name}`;
    if (!container.resources?.requests?.cpu || !container.resources?.requests?.memory) problems.push(`${where}: cpu and memory requests must be set`);
    if (!container.resources?.limits?.memory) problems.push(`${where}: a memory limit must be set`);
    if (container.securityContext?.readOnlyRootFilesystem !== true && !writableRootAllowed.has(container.name)) {
      problems.push(`${where}: readOnlyRootFilesystem must be true`);
    }
  }
  return problems;
}
