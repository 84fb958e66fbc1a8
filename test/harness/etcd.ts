import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePort } from './ports';
import { ManagedProcess, ProcessGroup } from './processes';
import { httpGet, waitFor } from './wait';

/** A real etcd server (Debian's etcd-server) on free loopback ports, with its data in a temporary folder. */
export interface EtcdServer {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly dataDir: string;
  readonly process: ManagedProcess;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  /** Extra command-line flags (TLS, auth, …). */
  readonly extraArgs?: readonly string[];
  /** Reuse this data folder instead of a new one (to restart a stopped server with its data). */
  readonly dataDir?: string;
  /** Reuse these ports (to restart a stopped server at the same address). */
  readonly clientPort?: number;
  readonly peerPort?: number;
}

/** Starts etcd and resolves once its /health endpoint reports healthy. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const binary = process.env.ETCD_BIN ?? 'etcd';
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'mm-etcd-'));
  const clientPort = options.clientPort ?? await freePort();
  const peerPort = options.peerPort ?? await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const group = new ProcessGroup();
  const proc = group.spawn(binary, [
    '--name', 'test',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `test=${peer}`,
    '--initial-cluster-state', 'new',
    '--log-level', 'warn',
    ...(options.extraArgs ?? []),
  ], { name: 'etcd', env: { ETCD_UNSUPPORTED_ARCH: process.arch === 'arm64' ? 'arm64' : '' } });

  const stop = async () => {
    await group.stopAll();
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(`etcd health at ${endpoint}`, async () => {
      if (!proc.running) throw new Error(`etcd exited early:\n${proc.log}`);
      const { status, body } = await httpGet(`${endpoint}/health`);
      return status === 200 && body.includes('"health":"true"');
    }, { timeoutMs: 20_000 });
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint, clientPort, dataDir, process: proc, stop };
}

export interface EtcdUser {
  readonly name: string;
  readonly password: string;
  /** The only keys the user may read and write (the mesh needs no more: leases and elections live under it). */
  readonly prefix: string;
}

/** Turns authentication on (a root user with `rootPassword` must exist for that) and adds `user` with its prefix. */
export async function enableEtcdAuth(endpoint: string, user: EtcdUser, rootPassword: string): Promise<void> {
  const admin = new Etcd3({ hosts: endpoint });
  try {
    await admin.role('root').create();
    await admin.user('root').create(rootPassword);
    await admin.user('root').addRole('root');
    const role = await admin.role(`${user.name}-rw`).create();
    await role.grant({ permission: 'Readwrite', range: admin.range({ prefix: user.prefix }) });
    await admin.user(user.name).create(user.password);
    await admin.user(user.name).addRole(role.name);
    await admin.auth.authEnable({});
  } finally {
    admin.close();
  }
}
