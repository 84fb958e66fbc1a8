import { once } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { ErrorCode, Flag, Setting, settingsPayload, uint32Payload } from '../../runtime/src/h2/frames';
import { HpackDecoder, encodeHeaderBlock } from '../../runtime/src/h2/hpack';
import { ServerConnection, ServerConnectionOptions, ServerStream, ServerStreamEnd } from '../../runtime/src/h2/server';
import { CLIENT_PREFACE, FrameType, ReadFrame, frame, literal, parseFrames } from '../harness/h2-frames';
import { waitFor } from '../harness/wait';

/**
 * The front door's HTTP/2 server (`ServerConnection`) on loopback, driven by real `node:http2` clients (nghttp2:
 * Huffman, the dynamic table, CONTINUATION, its own flow control) and, for what node's client refuses to send, by raw
 * frames over TCP. Each stream ends exactly once with what happened; a bad stream costs only itself, a bad connection
 * only itself.
 */

/** What the server announces (server.ts): a 1 MiB stream window. */
const STREAM_WINDOW = 2 ** 20;
const MiB = 2 ** 20;
const GRPC = 'application/grpc';

interface TestServer {
  readonly port: number;
  /** Server-side connections in accept order. */
  readonly connections: ServerConnection[];
  readonly sockets: net.Socket[];
  /** Everything each connection's client sent, when tapped. */
  readonly received: Buffer[][];
}

const servers: net.Server[] = [];
const serverConnections: ServerConnection[] = [];
const sessions: http2.ClientHttp2Session[] = [];
const rawSockets: net.Socket[] = [];
const warnings: string[] = [];
const onWarning = (w: Error) => warnings.push(w.message);

type Options = Partial<Omit<ServerConnectionOptions, 'onStream'>> & { readonly tap?: boolean };

async function serve(onStream: (stream: ServerStream) => void, options: Options = {}): Promise<TestServer> {
  const { tap, ...rest } = options;
  const result: TestServer = { port: 0, connections: [], sockets: [], received: [] };
  const server = net.createServer((socket) => {
    const bytes: Buffer[] = [];
    // A second 'data' listener sees the same chunks the connection reads.
    if (tap) socket.on('data', (chunk: Buffer) => bytes.push(chunk));
    const connection = new ServerConnection(socket, { maxConcurrentStreams: 1_000, maxHeaderListSize: 64 * 1024, onStream, ...rest });
    result.connections.push(connection);
    result.sockets.push(socket);
    result.received.push(bytes);
    serverConnections.push(connection);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { ...result, port: (server.address() as net.AddressInfo).port };
}

/** A node client that has the server's settings. */
async function connect(port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  sessions.push(session);
  session.on('error', () => undefined);
  await once(session, 'remoteSettings');
  return session;
}

/** What the server saw of one stream. */
interface Seen {
  readonly stream: ServerStream;
  readonly chunks: Buffer[];
  ended: boolean;
  readonly ends: ServerStreamEnd[];
  readonly body: () => Buffer;
}

/** Records a stream's events; `onData`/`onEnd` run after recording. */
function observe(stream: ServerStream, hooks: { onData?: (chunk: Buffer, seen: Seen) => void; onEnd?: (seen: Seen) => void } = {}): Seen {
  const chunks: Buffer[] = [];
  const seen: Seen = { stream, chunks, ended: false, ends: [], body: () => Buffer.concat(chunks) };
  stream.handlers.data = (chunk) => {
    chunks.push(chunk);
    hooks.onData?.(chunk, seen);
  };
  stream.handlers.end = () => {
    seen.ended = true;
    hooks.onEnd?.(seen);
  };
  stream.handlers.close = (end) => seen.ends.push(end);
  return seen;
}

interface Answer {
  readonly headers?: http2.IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly headersEndStream: boolean;
  readonly body: Buffer;
  readonly trailers?: http2.IncomingHttpHeaders;
  readonly rstCode: number;
}

/** One call from a node client, to its 'close'. `body` undefined: the request is ended with no body; null: never ended. */
function call(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | null,
  setup?: (req: http2.ClientHttp2Stream) => void): Promise<Answer> {
  const req = session.request({ ':method': 'POST', 'content-type': GRPC, 'te': 'trailers', ...headers });
  return new Promise((resolve) => {
    let responseHeaders: http2.IncomingHttpHeaders | undefined;
    let rawHeaders: string[] = [];
    let headersEndStream = false;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    // node passes the fields as received (names repeated) third; its typings leave that out.
    req.on('response', (h, flags, ...more: unknown[]) => {
      responseHeaders = h;
      headersEndStream = flags % 2 === 1;
      if (Array.isArray(more[0])) rawHeaders = more[0].map(String);
    });
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('error', () => undefined);
    req.on('close', () => resolve({ headers: responseHeaders, rawHeaders, headersEndStream, body: Buffer.concat(chunks), trailers, rstCode: req.rstCode }));
    setup?.(req);
    if (body === undefined) req.end();
    else if (body !== null) req.end(body);
  });
}

/** A gRPC length-prefixed message. */
function grpcMessage(payload: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

/** Bytes that differ at every 4-byte offset, so a lost, duplicated or reordered piece shows. */
function pattern(length: number, salt = 0): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i + 4 <= length; i += 4) out.writeUInt32BE((i + salt) % 2 ** 32, i);
  return out;
}

/** Answers with `body`, trailers carrying its length. */
function answer(stream: ServerStream, body: Buffer): void {
  stream.respond({ ':status': 200, 'content-type': GRPC });
  stream.write(body);
  stream.end({ 'grpc-status': '0', 'x-bytes': String(body.length) });
}

/** A raw HTTP/2 client over TCP. */
class RawClient {
  /** Connects; with `handshake`, sends the preface and SETTINGS, waits for the server's SETTINGS and acknowledges them. */
  static async open(port: number, handshake = true): Promise<RawClient> {
    const raw = new RawClient(net.connect({ host: '127.0.0.1', port }));
    await once(raw.socket, 'connect');
    if (handshake) {
      raw.send(CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0));
      await raw.next('the server\'s SETTINGS', (f) => f.type === FrameType.SETTINGS && f.flags === 0);
      raw.send(frame(FrameType.SETTINGS, Flag.ACK, 0));
    }
    return raw;
  }

  closed = false;
  private readonly chunks: Buffer[] = [];

  constructor(readonly socket: net.Socket) {
    rawSockets.push(socket);
    socket.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => undefined);
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  frames(): ReadFrame[] {
    return parseFrames(Buffer.concat(this.chunks));
  }

  next(what: string, predicate: (f: ReadFrame) => boolean): Promise<ReadFrame> {
    return waitFor(what, () => this.frames().find(predicate), { timeoutMs: 3_000, intervalMs: 5 });
  }

  async closing(): Promise<void> {
    await waitFor('the server to close the connection', () => this.closed, { timeoutMs: 3_000, intervalMs: 5 });
  }
}

const rst = (streamId: number, code: number) => (f: ReadFrame) =>
  f.type === FrameType.RST_STREAM && f.streamId === streamId && f.payload.readUInt32BE(0) === code;
const isGoaway = (f: ReadFrame) => f.type === FrameType.GOAWAY;
/** [last stream id, error code] of a GOAWAY. */
const goaway = (f: ReadFrame) => [f.payload.readUInt32BE(0) % 2 ** 31, f.payload.readUInt32BE(4)];

function requestBlock(path: string, ...extra: Buffer[]): Buffer {
  return Buffer.concat([
    encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'raw'], ['content-type', GRPC]]),
    ...extra,
  ]);
}

const END_HEADERS_AND_STREAM = Flag.END_HEADERS + Flag.END_STREAM;

/** The response header fields the server sent on `streamId` (its encoder never indexes, so a fresh decoder reads them). */
function decodedResponseHeaders(raw: RawClient, streamId: number): Record<string, string> {
  const f = raw.frames().find((x) => x.type === FrameType.HEADERS && x.streamId === streamId);
  return f ? Object.fromEntries(new HpackDecoder(4_096, MiB).decode(f.payload)) : {};
}

beforeAll(() => {
  process.on('warning', onWarning);
});

afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  for (const s of rawSockets.splice(0)) s.destroy();
  for (const c of serverConnections.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

afterAll(() => {
  process.off('warning', onWarning);
  // A handler's failure costs its stream; it must never end up as a process warning.
  expect(warnings).toEqual([]);
});

describe('HTTP/2 server with node:http2 clients', () => {
  test('a unary gRPC call: request headers and body reach the handler; headers, data and trailers reach the client', async () => {
    const seen: Seen[] = [];
    const reply = grpcMessage(Buffer.from('pong'));
    const server = await serve((stream) => seen.push(observe(stream, {
      onEnd: () => {
        stream.respond({ ':status': 200, 'content-type': GRPC });
        stream.write(reply);
        stream.end({ 'grpc-status': '0', 'grpc-message': 'ok' });
      },
    })));
    const session = await connect(server.port);
    const request = grpcMessage(Buffer.from('ping'));
    const got = await call(session, { ':path': '/pkg.Svc/Method', 'grpc-timeout': '5S' }, request);

    expect(seen).toHaveLength(1);
    expect(seen[0].stream.headers).toEqual({
      ':method': 'POST',
      ':scheme': 'http',
      ':authority': `127.0.0.1:${server.port}`,
      ':path': '/pkg.Svc/Method',
      'content-type': GRPC,
      'te': 'trailers',
      'grpc-timeout': '5S',
    });
    expect(seen[0].body()).toEqual(request);
    expect(seen[0].ended).toBe(true);
    expect(got.headers).toMatchObject({ ':status': 200, 'content-type': GRPC });
    expect(got.headersEndStream).toBe(false);
    expect(got.body).toEqual(reply);
    expect(got.trailers).toMatchObject({ 'grpc-status': '0', 'grpc-message': 'ok' });
    expect(got.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    await waitFor('the server stream to close', () => seen[0].ends.length > 0, { intervalMs: 5 });
    expect(seen[0].ends).toEqual([{ kind: 'done' }]);
    expect(server.connections[0].activeStreams).toBe(0);
  });

  test('a trailers-only answer: headers that end the stream, no body and no trailers', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => seen.push(observe(stream, {
      onEnd: () => {
        stream.respond({ ':status': 200, 'content-type': GRPC, 'grpc-status': '5', 'grpc-message': 'no such model' }, true);
        // Writes after a trailers-only answer go nowhere.
        stream.write('ignored');
        stream.end({ 'grpc-status': '0' });
      },
    })));
    const got = await call(await connect(server.port), { ':path': '/pkg.Svc/Missing' });
    expect(got.headers).toMatchObject({ ':status': 200, 'content-type': GRPC, 'grpc-status': '5', 'grpc-message': 'no such model' });
    expect(got.headersEndStream).toBe(true);
    expect(got.body.length).toBe(0);
    expect(got.trailers).toBeUndefined();
    expect(got.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    await waitFor('the server stream to close', () => seen[0].ends.length > 0, { intervalMs: 5 });
    expect(seen[0].ends).toEqual([{ kind: 'done' }]);
  });

  test('300 calls on one connection with varied headers (Huffman, dynamic table, eviction) are decoded exactly', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => seen.push(observe(stream, {
      onEnd: () => {
        const h = stream.headers;
        stream.respond({ ':status': 200, 'x-echo': h[`x-name-${Number(h['x-n']) % 50}`], 'x-seen': JSON.stringify(h) });
        stream.end({ 'grpc-status': '0' });
      },
    })));
    const session = await connect(server.port);
    const sent = Array.from({ length: 300 }, (_, n): Record<string, string> => ({
      ':path': `/svc.S${n % 7}/M`,
      'x-n': String(n),
      'x-same': 'the same value every time',
      [`x-name-${n % 50}`]: `value ${n}${'/z~{|}0aZ'.repeat(n % 40)}`,
      'authorization': `Bearer token-${n % 3}`,
    }));
    const answers = await Promise.all(sent.map((headers) => call(session, headers)));
    expect(server.connections).toHaveLength(1);
    expect(seen).toHaveLength(300);
    answers.forEach((got, n) => {
      expect(got.headers?.[':status']).toBe(200);
      expect(got.headers?.['x-echo']).toBe(sent[n][`x-name-${n % 50}`]);
      expect(JSON.parse(String(got.headers?.['x-seen']))).toEqual({
        ':method': 'POST', ':scheme': 'http', ':authority': `127.0.0.1:${server.port}`, 'content-type': GRPC, 'te': 'trailers', ...sent[n],
      });
      expect(got.trailers?.['grpc-status']).toBe('0');
    });
  });

  test('5 MiB request and response bodies round trip byte-exact (flow control both ways)', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => seen.push(observe(stream, { onEnd: (s) => answer(stream, s.body()) })));
    const session = await connect(server.port);
    const body = pattern(5 * MiB, 7);
    const got = await call(session, { ':path': '/big' }, body);
    expect(seen[0].body().equals(body)).toBe(true);
    expect(got.trailers?.['x-bytes']).toBe(String(body.length));
    expect(got.body.length).toBe(body.length);
    expect(got.body.equals(body)).toBe(true);
    expect(seen[0].ends).toEqual([{ kind: 'done' }]);
  });

  test('a paused request stream holds its caller to one stream window; resume lets the rest through', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => {
      if (stream.headers[':path'] === '/small') {
        seen.push(observe(stream, { onEnd: (s) => answer(stream, Buffer.from(String(s.body().length))) }));
        return;
      }
      seen.push(observe(stream, {
        onData: (_chunk, s) => {
          if (s.chunks.length === 1) stream.pause();
        },
        onEnd: (s) => answer(stream, Buffer.from(String(s.body().length))),
      }));
    });
    const session = await connect(server.port);
    const body = pattern(5 * MiB, 3);
    const done = call(session, { ':path': '/paused' }, body);
    const received = () => seen[0].chunks.reduce((n, c) => n + c.length, 0);
    await waitFor('the stream window to be used up', () => received() >= STREAM_WINDOW - 16_384, { intervalMs: 5 });
    // Nothing arriving is what is checked here: give a wrongly credited window the time to show.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received()).toBeGreaterThanOrEqual(STREAM_WINDOW - 16_384);
    expect(received()).toBeLessThanOrEqual(STREAM_WINDOW + 16_384);
    expect(seen[0].ended).toBe(false);
    // The paused stream holds only its own window of the connection's: another call goes through meanwhile.
    const other = await call(session, { ':path': '/small' }, pattern(2 * MiB));
    expect(other.body.toString()).toBe(String(2 * MiB));
    expect(received()).toBeLessThanOrEqual(STREAM_WINDOW + 16_384);

    seen[0].stream.resume();
    const got = await done;
    expect(got.body.toString()).toBe(String(body.length));
    expect(seen[0].body().equals(body)).toBe(true);
    expect(seen[0].ends).toEqual([{ kind: 'done' }]);
  });

  test('a client that stops reading makes write return false; drain fires once it reads again, and every byte arrives', async () => {
    const total = 5 * MiB;
    const source = pattern(total, 11);
    const chunkSize = 64 * 1024;
    let sent = 0;
    let falseAt = -1;
    let drains = 0;
    const seen: Seen[] = [];
    const server = await serve((stream) => {
      const pump = () => {
        while (sent < total) {
          const ok = stream.write(source.subarray(sent, sent + chunkSize));
          sent += chunkSize;
          if (!ok) {
            if (falseAt < 0) falseAt = sent;
            return;
          }
        }
        stream.end({ 'grpc-status': '0' });
      };
      seen.push(observe(stream, {
        onEnd: () => {
          stream.respond({ ':status': 200, 'content-type': GRPC });
          pump();
        },
      }));
      stream.handlers.drain = () => {
        drains++;
        pump();
      };
    });
    const session = await connect(server.port);
    let clientStream: http2.ClientHttp2Stream | undefined;
    const done = call(session, { ':path': '/download' }, undefined, (req) => {
      clientStream = req;
      req.pause();
    });
    await waitFor('write to return false', () => falseAt > 0, { intervalMs: 5 });
    // While the client does not read, its window stays shut: the queue cannot drain.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(drains).toBe(0);
    expect(sent).toBe(falseAt);
    expect(sent).toBeLessThan(total);
    clientStream?.resume();
    const got = await done;
    expect(drains).toBeGreaterThanOrEqual(1);
    expect(got.body.length).toBe(total);
    expect(got.body.equals(source)).toBe(true);
    expect(got.trailers?.['grpc-status']).toBe('0');
    expect(seen[0].ends).toEqual([{ kind: 'done' }]);
  });

  test('repeated request header names arrive as arrays; array response headers and trailers go out as repeated fields', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => seen.push(observe(stream, {
      onEnd: () => {
        stream.respond({ ':status': 200, 'x-rep': ['1', '2', '3'], 'set-cookie': ['a=1', 'b=2'] });
        stream.end({ 'grpc-status': '0', 'x-trail': ['p', 'q'] });
      },
    })));
    const got = await call(await connect(server.port), { ':path': '/multi', 'x-multi': ['a', 'b', 'c'], 'x-single': 'only' });
    expect(seen[0].stream.headers['x-multi']).toEqual(['a', 'b', 'c']);
    expect(seen[0].stream.headers['x-single']).toBe('only');
    const pairs = [];
    for (let i = 0; i + 1 < got.rawHeaders.length; i += 2) pairs.push([got.rawHeaders[i], got.rawHeaders[i + 1]]);
    expect(pairs.filter(([name]) => name === 'x-rep' || name === 'set-cookie')).toEqual([
      ['x-rep', '1'], ['x-rep', '2'], ['x-rep', '3'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2'],
    ]);
    expect(got.headers?.['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(got.trailers?.['x-trail']).toBe('p, q');
  });

  test('a 40 KB request header block, split by the client into CONTINUATION frames, arrives whole', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => seen.push(observe(stream, { onEnd: () => answer(stream, Buffer.from('ok')) })), { tap: true });
    const big: Record<string, string> = {};
    for (let i = 0; i < 4; i++) big[`x-big-${i}`] = pattern(7_500, i).toString('base64').slice(0, 10_000);
    const got = await call(await connect(server.port), { ':path': '/headers', ...big });
    expect(got.headers?.[':status']).toBe(200);
    for (const [name, value] of Object.entries(big)) expect(seen[0].stream.headers[name]).toBe(value);
    const frames = parseFrames(Buffer.concat(server.received[0]).subarray(CLIENT_PREFACE.length));
    expect(frames.filter((f) => f.type === FrameType.CONTINUATION && f.streamId === 1).length).toBeGreaterThanOrEqual(1);
  });

  test('a client reset mid-call closes the stream as reset with its code; the connection serves the next call', async () => {
    const seen: Seen[] = [];
    // '/cancel' is never answered: only the client's reset can end it.
    const server = await serve((stream) => seen.push(observe(stream, {
      onEnd: (s) => {
        if (stream.headers[':path'] !== '/cancel') answer(stream, s.body());
      },
    })));
    const session = await connect(server.port);
    let req: http2.ClientHttp2Stream | undefined;
    const cancelled = call(session, { ':path': '/cancel' }, null, (r) => {
      req = r;
      r.write(Buffer.from('partial'));
    });
    await waitFor('the first bytes to arrive', () => seen[0]?.chunks.length > 0, { intervalMs: 5 });
    req?.close(http2.constants.NGHTTP2_CANCEL);
    expect((await cancelled).rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    await waitFor('the server stream to close', () => seen[0].ends.length > 0, { intervalMs: 5 });
    expect(seen[0].ends).toEqual([{ kind: 'reset', code: ErrorCode.CANCEL }]);
    expect(seen[0].body().toString()).toBe('partial');
    expect(server.connections[0].activeStreams).toBe(0);
    const next = await call(session, { ':path': '/next' }, Buffer.from('again'));
    expect(next.body.toString()).toBe('again');
    expect(server.connections).toHaveLength(1);
  });

  test('a handler that throws (in onStream, in data) costs only its stream: INTERNAL_ERROR, the connection goes on', async () => {
    const seen = new Map<string, Seen>();
    const server = await serve((stream) => {
      const path = String(stream.headers[':path']);
      const s = observe(stream, {
        onData: () => {
          if (path === '/throw-data') throw new Error('data handler bug');
        },
        onEnd: (x) => answer(stream, x.body()),
      });
      seen.set(path, s);
      if (path === '/throw-open') throw new Error('onStream bug');
    });
    const session = await connect(server.port);
    const [open, data, fine] = await Promise.all([
      call(session, { ':path': '/throw-open' }, Buffer.from('a')),
      call(session, { ':path': '/throw-data' }, Buffer.from('b')),
      call(session, { ':path': '/fine' }, Buffer.from('c')),
    ]);
    expect(open.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
    expect(open.headers).toBeUndefined();
    expect(data.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
    expect(data.headers).toBeUndefined();
    expect(fine.body.toString()).toBe('c');
    expect(fine.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(seen.get('/throw-open')?.ends).toEqual([{ kind: 'failed', message: 'the stream\'s handler failed: onStream bug' }]);
    expect(seen.get('/throw-data')?.ends).toEqual([{ kind: 'failed', message: 'the stream\'s handler failed: data handler bug' }]);
    expect((await call(session, { ':path': '/after' }, Buffer.from('d'))).body.toString()).toBe('d');
    expect(server.connections).toHaveLength(1);
  });

  test('an answer given while the client is still sending ends the stream: the client gets it whole, then RST_STREAM(NO_ERROR)', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => seen.push(observe(stream, {
      onData: (_chunk, s) => {
        if (s.chunks.length === 1) {
          stream.respond({ ':status': 200, 'content-type': GRPC, 'x-early': 'yes' });
          stream.write('early answer');
          stream.end({ 'grpc-status': '0', 'grpc-message': 'ok' });
        }
      },
    })));
    const session = await connect(server.port);
    // The request is never ended: only the server's RST_STREAM can close the client's stream.
    const got = await call(session, { ':path': '/early' }, null, (req) => req.write(Buffer.from('first part')));
    expect(got.headers).toMatchObject({ ':status': 200, 'x-early': 'yes' });
    expect(got.body.toString()).toBe('early answer');
    expect(got.trailers).toMatchObject({ 'grpc-status': '0', 'grpc-message': 'ok' });
    expect(got.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(seen[0].ended).toBe(false);
    expect(seen[0].ends).toEqual([{ kind: 'done' }]);
    expect((await call(session, { ':path': '/early' }, Buffer.from('x'))).body.toString()).toBe('early answer');
  });

  test('graceful close: GOAWAY goes out, the call in flight completes, then the socket closes and onClose runs', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => seen.push(observe(stream)));
    const session = await connect(server.port);
    const goaways: Array<[number, number]> = [];
    session.on('goaway', (code, lastStreamId) => goaways.push([code, lastStreamId]));
    const inFlight = call(session, { ':path': '/slow' }, Buffer.from('request'));
    await waitFor('the request to arrive whole', () => seen[0]?.ended, { intervalMs: 5 });
    const connection = server.connections[0];
    let closeListeners = 0;
    connection.onClose(() => closeListeners++);
    let socketClosed = false;
    server.sockets[0].on('close', () => {
      socketClosed = true;
    });

    connection.close();
    await waitFor('the client to receive GOAWAY', () => goaways.length > 0, { intervalMs: 5 });
    expect(goaways).toEqual([[http2.constants.NGHTTP2_NO_ERROR, 1]]);
    expect(closeListeners).toBe(0);
    expect(socketClosed).toBe(false);
    expect(connection.activeStreams).toBe(1);

    answer(seen[0].stream, Buffer.from('finished after GOAWAY'));
    const got = await inFlight;
    expect(got.body.toString()).toBe('finished after GOAWAY');
    expect(got.trailers?.['grpc-status']).toBe('0');
    expect(seen[0].ends).toEqual([{ kind: 'done' }]);
    await waitFor('the server socket to close', () => socketClosed, { intervalMs: 5 });
    expect(closeListeners).toBe(1);
    // A listener added afterwards runs at once.
    connection.onClose(() => closeListeners++);
    expect(closeListeners).toBe(2);
  });

  test('PING from a node client is answered with its payload', async () => {
    const server = await serve(() => undefined);
    const session = await connect(server.port);
    const payload = Buffer.from('8 bytes!');
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      session.ping(payload, (err, _duration, got) => (err ? reject(err) : resolve(got)));
    });
    expect(echoed).toEqual(payload);
  });
});

describe('HTTP/2 server with raw frames', () => {
  test('bytes that are not an HTTP/2 preface get GOAWAY(PROTOCOL_ERROR) and a closed socket; a good connection is served', async () => {
    const server = await serve((stream) => observe(stream, { onEnd: (s) => answer(stream, s.body()) }));
    const raw = await RawClient.open(server.port, false);
    const session = await connect(server.port);
    raw.send(Buffer.from('\x16\x03\x01 not a preface at all, e.g. TLS to a plaintext port'));
    const away = await raw.next('GOAWAY', isGoaway);
    expect(goaway(away)).toEqual([0, ErrorCode.PROTOCOL_ERROR]);
    await raw.closing();
    const got = await call(session, { ':path': '/good' }, Buffer.from('still served'));
    expect(got.body.toString()).toBe('still served');
  });

  test('an HTTP/1 request gets a readable 505 saying what the port speaks, and a closed socket', async () => {
    const server = await serve((stream) => observe(stream));
    const socket = net.connect({ host: '127.0.0.1', port: server.port });
    rawSockets.push(socket);
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.write('GET /v2/health/ready HTTP/1.1\r\nHost: mesh\r\n\r\n');
    await once(socket, 'close');
    expect(text).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
    expect(text).toMatch(/\r\n\r\nthis port speaks gRPC over HTTP\/2 .*KServe v2 REST is on MM_REST_PORT\n$/);
  });

  test('a first frame other than SETTINGS gets GOAWAY(PROTOCOL_ERROR) and no answer to it', async () => {
    const server = await serve(() => undefined);
    const raw = await RawClient.open(server.port, false);
    raw.send(CLIENT_PREFACE, frame(FrameType.PING, 0, 0, Buffer.alloc(8, 1)));
    expect(goaway(await raw.next('GOAWAY', isGoaway))).toEqual([0, ErrorCode.PROTOCOL_ERROR]);
    await raw.closing();
    expect(raw.frames().some((f) => f.type === FrameType.PING)).toBe(false);
  });

  test.each([
    ['missing :path', encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':authority', 'raw']])],
    ['an upper-case header name', requestBlock('/bad', literal('X-Upper', 'v'))],
    ['a connection header', requestBlock('/bad', literal('connection', 'keep-alive'))],
  ])('a request with %s is reset with PROTOCOL_ERROR; the next stream on the connection is served', async (_what, block) => {
    const opened: number[] = [];
    const server = await serve((stream) => {
      opened.push(stream.id);
      observe(stream, { onEnd: () => answer(stream, Buffer.from('ok')) });
    });
    const raw = await RawClient.open(server.port);
    raw.send(frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, 1, block), frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, 3, requestBlock('/good')));
    await raw.next('RST_STREAM(1, PROTOCOL_ERROR)', rst(1, ErrorCode.PROTOCOL_ERROR));
    await raw.next('the answer on stream 3', (f) => f.type === FrameType.HEADERS && f.streamId === 3 && f.flags === END_HEADERS_AND_STREAM);
    expect(decodedResponseHeaders(raw, 3)).toEqual({ ':status': '200', 'content-type': GRPC });
    expect(opened).toEqual([3]);
    expect(raw.frames().filter((f) => f.streamId === 1).map((f) => f.type)).toEqual([FrameType.RST_STREAM]);
    expect(raw.frames().some(isGoaway)).toBe(false);
  });

  test('HEADERS on an even (server-initiated) stream id is a connection error: GOAWAY(PROTOCOL_ERROR)', async () => {
    const opened: number[] = [];
    const server = await serve((stream) => opened.push(stream.id));
    const raw = await RawClient.open(server.port);
    raw.send(frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, 2, requestBlock('/even')));
    expect(goaway(await raw.next('GOAWAY', isGoaway))).toEqual([0, ErrorCode.PROTOCOL_ERROR]);
    await raw.closing();
    expect(opened).toEqual([]);
  });

  test('DATA beyond the 1 MiB stream window resets that stream with FLOW_CONTROL_ERROR; the connection goes on', async () => {
    const seen: Seen[] = [];
    const server = await serve((stream) => {
      seen.push(observe(stream));
      // Never credit the caller: the window stays at what the server announced.
      stream.pause();
    });
    const raw = await RawClient.open(server.port);
    const frameSize = 16_384;
    const frames = [frame(FrameType.HEADERS, Flag.END_HEADERS, 1, requestBlock('/flood'))];
    for (let sent = 0; sent <= STREAM_WINDOW; sent += frameSize) frames.push(frame(FrameType.DATA, 0, 1, pattern(frameSize, sent)));
    raw.send(...frames);
    await raw.next('RST_STREAM(1, FLOW_CONTROL_ERROR)', rst(1, ErrorCode.FLOW_CONTROL_ERROR));
    expect(seen[0].body().length).toBe(STREAM_WINDOW);
    expect(seen[0].ends).toEqual([{ kind: 'failed', message: 'the caller sent more than the stream window' }]);
    expect(raw.frames().some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1)).toBe(false);
    raw.send(frame(FrameType.PING, 0, 0, Buffer.from('still up')));
    await raw.next('PING ACK', (f) => f.type === FrameType.PING && f.flags === Flag.ACK);
    expect(raw.frames().some(isGoaway)).toBe(false);
  });

  test('PING is answered with a PING ACK carrying the same 8 bytes', async () => {
    const server = await serve(() => undefined);
    const raw = await RawClient.open(server.port);
    raw.send(frame(FrameType.PING, 0, 0, Buffer.from('abcdefgh')));
    const ack = await raw.next('PING ACK', (f) => f.type === FrameType.PING);
    expect(ack.flags).toBe(Flag.ACK);
    expect(ack.streamId).toBe(0);
    expect(ack.payload.toString()).toBe('abcdefgh');
  });

  test('a stream over maxConcurrentStreams gets RST_STREAM(REFUSED_STREAM) and never reaches a handler', async () => {
    const opened: number[] = [];
    const server = await serve((stream) => {
      opened.push(stream.id);
      observe(stream, {
        onEnd: () => {
          if (stream.headers[':path'] === '/now') answer(stream, Buffer.from('ok'));
        },
      });
    }, { maxConcurrentStreams: 2 });
    const raw = await RawClient.open(server.port);
    raw.send(...[1, 3, 5].map((id) => frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, id, requestBlock(`/hold-${id}`))));
    await raw.next('RST_STREAM(5, REFUSED_STREAM)', rst(5, ErrorCode.REFUSED_STREAM));
    expect(opened).toEqual([1, 3]);
    expect(raw.frames().filter((f) => f.type === FrameType.RST_STREAM).map((f) => f.streamId)).toEqual([5]);
    // Once a stream is free, the next one is served.
    raw.send(frame(FrameType.RST_STREAM, 0, 1, uint32Payload(ErrorCode.CANCEL)), frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, 7, requestBlock('/now')));
    await raw.next('the answer on stream 7', (f) => f.type === FrameType.HEADERS && f.streamId === 7);
    expect(opened).toEqual([1, 3, 7]);
    expect(raw.frames().some(isGoaway)).toBe(false);
  });

  test('frames the client sent on a stream the server already ended and reset are ignored (RFC 9113 §5.1), not a connection error', async () => {
    const opened: number[] = [];
    const server = await serve((stream) => {
      opened.push(stream.id);
      // Answers on the first request bytes, before the request ends: the server then resets the stream (NO_ERROR).
      observe(stream, { onData: () => answer(stream, Buffer.from('early')), onEnd: () => answer(stream, Buffer.from('ok')) });
    });
    const raw = await RawClient.open(server.port);
    raw.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, requestBlock('/early')), frame(FrameType.DATA, 0, 1, Buffer.from('part one')));
    await raw.next('RST_STREAM(1, NO_ERROR)', rst(1, ErrorCode.NO_ERROR));
    // What the client had in flight when the reset crossed it: more data, then its request trailers.
    raw.send(frame(FrameType.DATA, 0, 1, Buffer.from('part two')), frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, 1, encodeHeaderBlock([['x-checksum', '42']])));
    raw.send(frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, 3, requestBlock('/next')));
    await raw.next('the answer on stream 3', (f) => f.type === FrameType.HEADERS && f.streamId === 3 && f.flags === END_HEADERS_AND_STREAM);
    expect(opened).toEqual([1, 3]);
    expect(raw.frames().some(isGoaway)).toBe(false);
  });

  test('the server applies the client\'s SETTINGS: a 100-byte stream window caps the first DATA and WINDOW_UPDATE releases the rest', async () => {
    const server = await serve((stream) => observe(stream, { onEnd: () => answer(stream, pattern(1_000)) }));
    const raw = new RawClient(net.connect({ host: '127.0.0.1', port: server.port }));
    await once(raw.socket, 'connect');
    raw.send(CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 100]])));
    raw.send(frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, 1, requestBlock('/small-window')));
    await raw.next('SETTINGS ACK', (f) => f.type === FrameType.SETTINGS && f.flags === Flag.ACK);
    await raw.next('the first DATA', (f) => f.type === FrameType.DATA && f.streamId === 1);
    const data = () => raw.frames().filter((f) => f.type === FrameType.DATA && f.streamId === 1);
    expect(data().map((f) => f.payload.length)).toEqual([100]);
    raw.send(frame(FrameType.WINDOW_UPDATE, 0, 1, uint32Payload(900)));
    await raw.next('the trailers', (f) => f.type === FrameType.HEADERS && f.streamId === 1 && f.flags === END_HEADERS_AND_STREAM);
    expect(Buffer.concat(data().map((f) => f.payload))).toEqual(pattern(1_000));
  });

  test('a client that opens huge windows but stops reading TCP: the server holds the answer back instead of buffering it all', async () => {
    const total = 24 * MiB;
    let writesRefused = 0;
    const server = await serve((stream) => observe(stream, {
      onEnd: () => {
        stream.respond({ 'content-type': GRPC });
        for (let sent = 0; sent < total; sent += MiB) if (!stream.write(pattern(MiB, sent / MiB))) writesRefused++;
        stream.end({ 'grpc-status': '0' });
      },
    }));
    const raw = new RawClient(net.connect({ host: '127.0.0.1', port: server.port }));
    await once(raw.socket, 'connect');
    const settings = settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31 - 1], [Setting.MAX_FRAME_SIZE, 2 ** 24 - 1]]);
    raw.send(CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, settings),
      frame(FrameType.WINDOW_UPDATE, 0, 0, uint32Payload(2 ** 31 - 1 - 65_535)),
      frame(FrameType.HEADERS, END_HEADERS_AND_STREAM, 1, requestBlock('/flood')));
    raw.socket.pause();
    await waitFor('the server to have queued its answer', () => writesRefused > 0 && server.sockets[0]?.writableLength > 0);
    // Give the server time to push whatever it would; the kernel's buffers take a few MiB at most.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.sockets[0].writableLength).toBeLessThanOrEqual(4 * MiB + MiB);
    raw.socket.resume();
    await raw.next('the trailers', (f) => f.type === FrameType.HEADERS && f.streamId === 1 && f.flags === END_HEADERS_AND_STREAM);
    const data = raw.frames().filter((f) => f.type === FrameType.DATA && f.streamId === 1).map((f) => f.payload);
    expect(Buffer.concat(data).length).toBe(total);
  });

  test('a client that floods PINGs and does not read the answers loses its connection (ENHANCE_YOUR_CALM)', async () => {
    const errors: string[] = [];
    const server = await serve((stream) => observe(stream), { onError: (err) => errors.push(err.message) });
    const raw = await RawClient.open(server.port);
    raw.socket.pause();
    let closed = false;
    server.connections[0].onClose(() => {
      closed = true;
    });
    // 17 bytes in, 17 bytes out per PING: past the 16 MiB of unread answers (and what the kernel buffers) the server stops.
    const pings = Buffer.concat(Array.from({ length: 60_000 }, () => frame(FrameType.PING, 0, 0, Buffer.alloc(8, 1))));
    for (let sent = 0; sent < 40 * MiB && !closed; sent += pings.length) {
      if (!raw.socket.write(pings)) await Promise.race([once(raw.socket, 'drain'), once(raw.socket, 'close')]);
    }
    await waitFor('the server to end the connection', () => closed, { timeoutMs: 10_000 });
    expect(errors).toEqual([expect.stringMatching(/does not read the answers/)]);
  });

  test('a client that opens and resets streams faster than the server allows gets GOAWAY(ENHANCE_YOUR_CALM)', async () => {
    let opened = 0;
    const server = await serve(() => {
      opened++;
    });
    const raw = await RawClient.open(server.port);
    const frames: Buffer[] = [];
    for (let i = 0; i < 1_200; i++) {
      const id = 1 + 2 * i;
      frames.push(frame(FrameType.HEADERS, Flag.END_HEADERS, id, requestBlock('/rapid-reset')), frame(FrameType.RST_STREAM, 0, id, uint32Payload(ErrorCode.CANCEL)));
    }
    raw.send(...frames);
    const away = await raw.next('GOAWAY', isGoaway);
    expect(goaway(away)[1]).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    // The burst allowance (1000) and what refilled meanwhile were served; the rest never reached a handler.
    expect(opened).toBeGreaterThanOrEqual(1_001);
    expect(opened).toBeLessThan(1_200);
    await raw.closing();
  });
});
