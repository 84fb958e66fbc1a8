import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';

/**
 * Long-lived HTTP/2 client sessions, one per upstream (the local runtime's data endpoint, each peer's front door),
 * reconnected on demand. Reusing one session keeps the forward path free of connection set-up.
 */

/** A TCP upstream with `tls` is a peer's front door serving TLS; the local model server is always plaintext. */
export type Upstream = { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly tls?: boolean } | { readonly kind: 'socket'; readonly path: string };

export function upstreamKey(upstream: Upstream): string {
  return upstream.kind === 'tcp' ? `${upstream.tls ? 'tls:' : ''}${upstream.host}:${upstream.port}` : `unix:${upstream.path}`;
}

export class SessionPool {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private closed = false;

  /** `tls` gives the current client certificate and trust for TLS upstreams (read at each new connection). */
  constructor(private readonly tlsOptions?: () => tls.ConnectionOptions) {}

  /** An open session to `upstream`, connecting if needed. Connection errors surface on the first request's stream. */
  get(upstream: Upstream): http2.ClientHttp2Session {
    const key = upstreamKey(upstream);
    const existing = this.sessions.get(key);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    if (this.closed) throw new Error('session pool is closed');
    // No Nagle delay: a call's headers and body are separate small writes that must not wait for an ACK.
    let session: http2.ClientHttp2Session;
    if (upstream.kind === 'socket') {
      session = http2.connect('http://localhost', { peerMaxConcurrentStreams: 1_000, createConnection: () => net.connect(upstream.path) });
    } else if (upstream.tls) {
      if (!this.tlsOptions) throw new Error(`no TLS settings for the TLS upstream ${key}`);
      const options = this.tlsOptions();
      session = http2.connect(`https://${upstream.host}:${upstream.port}`, {
        peerMaxConcurrentStreams: 1_000,
        createConnection: () => tls.connect({ ...options, socket: net.connect({ host: upstream.host, port: upstream.port, noDelay: true }), ALPNProtocols: ['h2'] }),
      });
    } else {
      session = http2.connect(`http://${upstream.host}:${upstream.port}`, {
        peerMaxConcurrentStreams: 1_000,
        createConnection: () => net.connect({ host: upstream.host, port: upstream.port, noDelay: true }),
      });
    }
    // Errors are reported to the streams using the session; the pool only forgets the broken session.
    session.on('error', () => undefined);
    const forget = () => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
    };
    session.on('close', forget);
    session.on('goaway', forget);
    session.unref();
    this.sessions.set(key, session);
    return session;
  }

  /** Drops the session to an upstream that failed, so the next request connects afresh. */
  discard(upstream: Upstream): void {
    const key = upstreamKey(upstream);
    const session = this.sessions.get(key);
    this.sessions.delete(key);
    session?.destroy();
  }

  close(): void {
    this.closed = true;
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}
