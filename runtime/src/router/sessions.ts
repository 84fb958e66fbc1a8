import * as net from 'node:net';
import * as tls from 'node:tls';
import { ClientConnection } from '../h2/client';

/**
 * Long-lived HTTP/2 client connections, one per upstream (the local runtime's data endpoint, each peer's front door),
 * reconnected on demand. Reusing one connection keeps the forward path free of connection set-up.
 */

/** A TCP upstream with `tls` is a peer's front door serving TLS; the local model server is always plaintext. */
export type Upstream = { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly tls?: boolean } | { readonly kind: 'socket'; readonly path: string };

export function upstreamKey(upstream: Upstream): string {
  return upstream.kind === 'tcp' ? `${upstream.tls ? 'tls:' : ''}${upstream.host}:${upstream.port}` : `unix:${upstream.path}`;
}

export class SessionPool {
  private readonly connections = new Map<string, ClientConnection>();
  private closed = false;

  /** `tls` gives the current client certificate and trust for TLS upstreams (read at each new connection). */
  constructor(private readonly tlsOptions?: () => tls.ConnectionOptions) {}

  /** A usable connection to `upstream`, connecting if needed. Connection errors surface on the first request's stream. */
  get(upstream: Upstream): ClientConnection {
    const key = upstreamKey(upstream);
    const existing = this.connections.get(key);
    if (existing?.usable) return existing;
    if (this.closed) throw new Error('session pool is closed');
    let connection: ClientConnection;
    if (upstream.kind === 'socket') {
      connection = new ClientConnection(net.connect(upstream.path), { scheme: 'http', authority: 'localhost' });
    } else if (upstream.tls) {
      if (!this.tlsOptions) throw new Error(`no TLS settings for the TLS upstream ${key}`);
      const socket = tls.connect({ ...this.tlsOptions(), socket: net.connect({ host: upstream.host, port: upstream.port, noDelay: true }), ALPNProtocols: ['h2'] });
      connection = new ClientConnection(socket, { scheme: 'https', authority: `${upstream.host}:${upstream.port}` });
    } else {
      // No Nagle delay: a call's frames are small writes that must not wait for an ACK.
      connection = new ClientConnection(net.connect({ host: upstream.host, port: upstream.port, noDelay: true }),
        { scheme: 'http', authority: `${upstream.host}:${upstream.port}` });
    }
    connection.onClose(() => {
      if (this.connections.get(key) === connection) this.connections.delete(key);
    });
    connection.unref();
    // A connection told to go away stays until its streams finish; the map then points at its successor.
    existing?.close();
    this.connections.set(key, connection);
    return connection;
  }

  /** Drops the connection to an upstream that failed, so the next request connects afresh. */
  discard(upstream: Upstream): void {
    const key = upstreamKey(upstream);
    const connection = this.connections.get(key);
    this.connections.delete(key);
    connection?.destroy();
  }

  close(): void {
    this.closed = true;
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
  }
}
