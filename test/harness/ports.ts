import * as net from 'node:net';

/** Ports this process handed out: the kernel may offer a closed port again before its taker has bound it. */
const handedOut = new Set<number>();

/**
 * Asks the kernel for a free loopback port, never one this process handed out before (callers starting several
 * servers at once got the same port twice). Another process could take it before use; callers bind promptly.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address() as net.AddressInfo;
        server.close(() => resolve(address.port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
