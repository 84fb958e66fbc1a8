import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';

/** How long a stop waits for calls in flight before cutting them off. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

/** Binds `server` (plaintext) and resolves with the bound port (the kernel's choice when `port` is 0). */
function bindInsecure(server: Server, host: string, port: number): Promise<number> {
  // An IPv6 literal needs brackets before the port.
  const address = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(new Error(`cannot listen on ${address}: ${err.message}`));
      else resolve(bound);
    });
  });
}

/** Where a built-in model server listens: `host:port`, or a Unix socket (`INTERNAL_GRPC_SOCKET_PATH` on the mesh's side). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  /** When set, the server listens here instead of on `host:port`. */
  readonly socketPath?: string;
}

/** Binds `server` where `address` says; resolves with what to print and the bound port (0 on a socket). */
export async function bindServer(server: Server, address: ListenAddress): Promise<{ readonly port: number; readonly where: string }> {
  if (address.socketPath === undefined) {
    const port = await bindInsecure(server, address.host, address.port);
    return { port, where: `${address.host}:${port}` };
  }
  const path = resolvePath(address.socketPath);
  await bindOwnerOnlySocket(server, path);
  return { port: 0, where: `socket ${path}` };
}

/**
 * Binds a plaintext Unix socket only this user can connect to (mode 0600), since whoever can connect can load and
 * unload models. A missing folder is created 0700; a socket left by a previous run of the container is replaced.
 */
async function bindOwnerOnlySocket(server: Server, path: string): Promise<void> {
  const fail = (why: string) => new Error(`cannot listen on socket ${path}: ${why}`);
  let inTheWay = false;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const existing = lstatSync(path, { throwIfNoEntry: false });
    inTheWay = existing !== undefined && !existing.isSocket();
    if (existing?.isSocket()) unlinkSync(path);
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (inTheWay) throw fail('a file that is not a socket is in the way');
  // bind() creates the socket with the process umask: narrow it for that moment so the socket is never open to others.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((done, reject) => {
      server.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (err) => (err ? reject(fail(err.message)) : done()));
    });
  } finally {
    process.umask(umask);
  }
}

/** Lets calls in flight finish for up to `graceMs`, then cuts the rest off (logging that it did). */
export function shutDownWithin(server: Server, graceMs: number, log: (line: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      log(`calls still open after ${graceMs} ms; closing them`);
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
