import { Server, ServerCredentials } from '@grpc/grpc-js';

/** How long a stop waits for calls in flight before cutting them off. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

/** Binds `server` (plaintext) and resolves with the bound port (the kernel's choice when `port` is 0). */
export function bindInsecure(server: Server, host: string, port: number): Promise<number> {
  // An IPv6 literal needs brackets before the port.
  const address = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(new Error(`cannot listen on ${address}: ${err.message}`));
      else resolve(bound);
    });
  });
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
