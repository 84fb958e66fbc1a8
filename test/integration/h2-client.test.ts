import { once } from 'node:events';
import * as http2 from 'node:http2';
import { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { ClientConnection, ClientStream, ResponseHeaders, StreamEnd } from '../../runtime/src/h2/client';
import { freePort } from '../harness/ports';
import { makeTestCert } from '../harness/storage-servers';

/**
 * The data plane's HTTP/2 client against real `node:http2` servers (nghttp2: Huffman, the dynamic table, its own
 * flow control and limits) on loopback.
 */

interface Answer {
  readonly headers?: ResponseHeaders;
  readonly endStreamOnHeaders?: boolean;
  readonly body: Buffer;
  readonly trailers?: ResponseHeaders;
  readonly end: StreamEnd;
}

/** Runs one request to its end, collecting everything the handlers saw. */
function call(connection: ClientConnection, headers: Array<[string, string]>, body?: Buffer, setup?: (s: ClientStream) => void): Promise<Answer> {
  const stream = connection.request(headers);
  return new Promise((resolve) => {
    let responseHeaders: ResponseHeaders | undefined;
    let endStreamOnHeaders: boolean | undefined;
    let trailers: ResponseHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.handlers = {
      response: (h, endStream) => {
        responseHeaders = h;
        endStreamOnHeaders = endStream;
      },
      data: (chunk) => chunks.push(Buffer.from(chunk)),
      trailers: (t) => {
        trailers = t;
      },
      drain: () => undefined,
      close: (end) => resolve({ headers: responseHeaders, endStreamOnHeaders, body: Buffer.concat(chunks), trailers, end }),
    };
    setup?.(stream);
    if (body) stream.write(body);
    if (!setup) stream.end();
  });
}

const post = (path: string, extra: Array<[string, string]> = []): Array<[string, string]> => [[':method', 'POST'], [':path', path], ...extra];

const servers: Array<http2.Http2Server | http2.Http2SecureServer | net.Server> = [];
const connections: ClientConnection[] = [];

async function listen<T extends http2.Http2Server | http2.Http2SecureServer | net.Server>(server: T): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function connect(port: number): ClientConnection {
  const connection = new ClientConnection(net.connect({ host: '127.0.0.1', port }), { scheme: 'http', authority: `127.0.0.1:${port}` });
  connections.push(connection);
  return connection;
}

/** A server that echoes the request body and names every request header in a response header. */
function echoServer(options: http2.ServerOptions = {}): http2.Http2Server {
  const server = http2.createServer(options);
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-path': String(headers[':path']), 'x-seen': JSON.stringify(headers) }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-bytes': String(body.length) }));
      stream.end(body);
    });
  });
  return server;
}

afterEach(async () => {
  for (const c of connections.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

describe('HTTP/2 client against node:http2', () => {
  test('a request with a body gets its headers, data and trailers; request headers arrive as sent', async () => {
    const connection = connect(await listen(echoServer()));
    const answer = await call(connection, post('/pkg.Svc/Method', [['content-type', 'application/grpc'], ['te', 'trailers'], ['x-custom', 'caf\u00e9'], ['x-multi', 'a'], ['x-multi', 'b']]), Buffer.from('hello'));
    expect(answer.end).toEqual({ kind: 'ended' });
    expect(answer.headers?.[':status']).toBe('200');
    expect(answer.headers?.['x-path']).toBe('/pkg.Svc/Method');
    expect(answer.endStreamOnHeaders).toBe(false);
    expect(answer.body.toString()).toBe('hello');
    expect(answer.trailers).toEqual({ 'grpc-status': '0', 'x-bytes': '5' });
    const seen = JSON.parse(String(answer.headers?.['x-seen'])) as Record<string, unknown>;
    expect(seen).toMatchObject({ ':method': 'POST', ':scheme': 'http', ':authority': expect.stringMatching(/^127\.0\.0\.1:/), 'te': 'trailers', 'x-multi': 'a, b' });
    expect(Buffer.from(String(seen['x-custom']), 'latin1').toString('latin1')).toBe('caf\u00e9');
  });

  test('hundreds of requests keep the decoder in step with the server\'s dynamic table (Huffman, indexing, eviction)', async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      const n = Number(headers['x-n']);
      // Values that repeat (indexed), change (evicting older entries from the 4 KiB table) and need Huffman.
      const extra: http2.OutgoingHttpHeaders = { 'x-same': 'the same value every time', [`x-name-${n % 50}`]: `value ${n} ${'z'.repeat(n % 200)}` };
      stream.respond({ ':status': 200, ...extra }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': `done ${n}` }));
      stream.end(Buffer.from(String(n)));
    });
    const connection = connect(await listen(server));
    const answers = await Promise.all(Array.from({ length: 300 }, (_, n) => call(connection, post('/x', [['x-n', String(n)]]))));
    answers.forEach((answer, n) => {
      expect(answer.headers?.['x-same']).toBe('the same value every time');
      expect(answer.headers?.[`x-name-${n % 50}`]).toBe(`value ${n} ${'z'.repeat(n % 200)}`);
      expect(answer.trailers?.['grpc-message']).toBe(`done ${n}`);
      expect(answer.body.toString()).toBe(String(n));
    });
  });

  test('bodies far beyond the default 64 KiB windows travel both ways whole (flow control), large headers in CONTINUATION frames', async () => {
    const connection = connect(await listen(echoServer()));
    const body = Buffer.alloc(5 * 2 ** 20);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32BE(i, i);
    const big = 'h'.repeat(40_000);
    const answers = await Promise.all([0, 1, 2].map(() => call(connection, post('/big', [['x-big', big]]), body)));
    for (const answer of answers) {
      expect(answer.end).toEqual({ kind: 'ended' });
      expect(answer.trailers?.['x-bytes']).toBe(String(body.length));
      expect(answer.body.equals(body)).toBe(true);
      expect(JSON.parse(String(answer.headers?.['x-seen']))['x-big']).toBe(big);
    }
  });

  test('requests beyond the peer\'s concurrent-stream limit wait their turn instead of being refused', async () => {
    let active = 0;
    let most = 0;
    const server = http2.createServer({ settings: { maxConcurrentStreams: 2 } });
    server.on('stream', (stream) => {
      most = Math.max(most, ++active);
      stream.resume();
      setTimeout(() => {
        active--;
        stream.respond({ ':status': 200 }, { endStream: true });
      }, 20);
    });
    const connection = connect(await listen(server));
    // Let the server's SETTINGS arrive first, as on a pooled connection.
    expect((await call(connection, post('/warm'))).end).toEqual({ kind: 'ended' });
    const answers = await Promise.all(Array.from({ length: 10 }, () => call(connection, post('/slow'))));
    expect(answers.map((a) => a.end.kind)).toEqual(Array(10).fill('ended'));
    expect(answers.every((a) => a.endStreamOnHeaders)).toBe(true);
    expect(most).toBe(2);
  });

  test('a reset from the server, REFUSED_STREAM and a cancel from this side each end the stream with what happened', async () => {
    const aborted: string[] = [];
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      stream.on('aborted', () => aborted.push(path));
      stream.on('error', () => undefined);
      if (path === '/reset') stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      if (path === '/refuse') stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      // '/hang' never answers.
    });
    const connection = connect(await listen(server));
    expect((await call(connection, post('/reset'))).end).toEqual({ kind: 'reset', code: http2.constants.NGHTTP2_INTERNAL_ERROR });
    expect((await call(connection, post('/refuse'))).end).toMatchObject({ kind: 'refused', connectFailure: false });
    const hanging = call(connection, post('/hang'), undefined, (s) => setTimeout(() => s.cancel(), 50));
    expect((await hanging).end).toEqual({ kind: 'cancelled' });
    await waitUntil(() => aborted.includes('/hang'));
    expect(connection.usable).toBe(true);
  });

  test('an answer that ends before the request does closes the stream cleanly (a server refusing a call early)', async () => {
    const server = http2.createServer();
    server.on('stream', (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '8' }, { endStream: true }));
    const connection = connect(await listen(server));
    const answer = await call(connection, post('/early'), Buffer.alloc(1_000), () => undefined);
    expect(answer.end).toEqual({ kind: 'ended' });
    expect(answer.endStreamOnHeaders).toBe(true);
    expect(answer.headers?.['grpc-status']).toBe('8');
    expect((await call(connection, post('/early'))).end).toEqual({ kind: 'ended' });
  });

  test('GOAWAY: a stream the server took finishes, a later one is refused with the peer\'s reason, and so are new requests', async () => {
    const server = http2.createServer();
    const sessions: http2.ServerHttp2Session[] = [];
    server.on('session', (s) => sessions.push(s));
    server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      if (headers[':path'] === '/slow') {
        // Takes this stream (id 3), refuses every later one, and answers a little later.
        stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
        setTimeout(() => stream.respond({ ':status': 200 }, { endStream: true }), 100);
      } else {
        stream.respond({ ':status': 200 }, { endStream: true });
      }
    });
    const connection = connect(await listen(server));
    expect((await call(connection, post('/first'))).end).toEqual({ kind: 'ended' });
    const [slow, after] = await Promise.all([call(connection, post('/slow')), call(connection, post('/after'))]);
    const reason = 'the peer is going away (HTTP/2 code 0)';
    expect(slow.end).toEqual({ kind: 'ended' });
    expect(after.end).toEqual({ kind: 'refused', connectFailure: false, message: reason });
    expect(connection.usable).toBe(false);
    expect((await call(connection, post('/late'))).end).toEqual({ kind: 'refused', connectFailure: false, message: reason });
    // node's server session does not notice the peer leaving once it sent GOAWAY itself.
    for (const session of sessions) session.destroy();
  });

  test('nothing listening: the request is refused as a connect failure; a peer that is not HTTP/2 fails the connection', async () => {
    const port = await freePort();
    const refused = await call(connect(port), post('/nobody'));
    expect(refused.end).toMatchObject({ kind: 'refused', connectFailure: true });

    const garbage = net.createServer((socket) => socket.resume().end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const garbagePort = await listen(garbage);
    const failed = await call(connect(garbagePort), post('/x'));
    expect(failed.end).toMatchObject({ kind: 'refused', connectFailure: true, message: expect.stringMatching(/HTTP\/2 error from the peer: frame of \d+ bytes exceeds/) });
  });

  test('a paused stream stops granting window, so the server is held back until it resumes', async () => {
    let written = 0;
    const total = 12 * 2 ** 20;
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      const chunk = Buffer.alloc(64 * 1024);
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!stream.write(chunk)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      pump();
    });
    const connection = connect(await listen(server));
    let received = 0;
    let stream!: ClientStream;
    const answer = call(connection, post('/stream'), undefined, (s) => {
      stream = s;
      const collect = s.handlers.data;
      s.handlers.data = (chunk) => {
        received += chunk.length;
        if (received === chunk.length) s.pause();
        collect(chunk);
      };
      s.end();
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Paused after the first chunk: at most one 4 MiB stream window reaches this side.
    expect(received).toBeLessThanOrEqual(4 * 2 ** 20);
    expect(received).toBeGreaterThan(0);
    stream.resume();
    const done = await answer;
    expect(done.end).toEqual({ kind: 'ended' });
    expect(done.body.length).toBe(total);
  });

  test('a handler that throws ends only its own stream; the other streams on the connection carry on', async () => {
    const connection = connect(await listen(echoServer()));
    const failing = call(connection, post('/bad'), undefined, (s) => {
      s.handlers.data = () => {
        throw new Error('consumer bug');
      };
      s.write(Buffer.from('x'));
      s.end();
    });
    const fine = call(connection, post('/good'), Buffer.from('y'));
    expect((await failing).end).toEqual({ kind: 'failed', message: 'the stream\'s handler failed: consumer bug' });
    const answer = await fine;
    expect(answer.end).toEqual({ kind: 'ended' });
    expect(answer.body.toString()).toBe('y');
    expect(connection.usable).toBe(true);
  });

  test('TLS with ALPN h2, as peers\' front doors serve it', async () => {
    const cert = makeTestCert(join(tmpdir(), `mm-h2-client-${process.pid}`));
    const server = http2.createSecureServer({ key: cert.keyPem, cert: cert.certPem });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end('secure');
    });
    const port = await listen(server);
    const socket = tls.connect({ host: '127.0.0.1', port, ca: cert.certPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    const connection = new ClientConnection(socket, { scheme: 'https', authority: `127.0.0.1:${port}` });
    connections.push(connection);
    const answer = await call(connection, post('/tls'));
    expect(answer.end).toEqual({ kind: 'ended' });
    expect(answer.body.toString()).toBe('secure');
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
