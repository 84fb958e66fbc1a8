import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { Rng, mutateBytes } from './mutate';
import { ErrorCode, Flag, Setting, settingsPayload, uint32Payload } from '../../runtime/src/h2/frames';
import { encodeHeaderBlock } from '../../runtime/src/h2/hpack';
import { ServerConnection, ServerStream, ServerStreamEnd } from '../../runtime/src/h2/server';
import { CLIENT_PREFACE, FrameType, frame, literal, parseFrames } from '../harness/h2-frames';
import { waitFor } from '../harness/wait';

/**
 * Hostile clients for the front door's HTTP/2 server: a valid client transcript (preface, settings, three streams
 * with data, a header block split into CONTINUATION, flow control, PING, a reset, GOAWAY), mutated and sent over real
 * TCP to a `ServerConnection` that answers every stream. Every stream a handler saw must close exactly once with a
 * known outcome, nothing may escape into the process, and the server must keep serving well-behaved clients.
 */

const SEEDS = (JSON.parse(readFileSync(join(__dirname, 'corpus', 'seeds.json'), 'utf8')) as { parsers: number[] }).parsers;
const PER_SEED = 40;
let tried = 0;

const GRPC = 'application/grpc';
const MESSAGE = Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from('abc')]);
const REPLY = Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from('ok')]);

/**
 * A well-behaved client's whole conversation: stream 1 a unary call, stream 3 (header block in HEADERS + CONTINUATION)
 * reset by the client mid-request, stream 5 answered by the server before its request ends; then GOAWAY.
 */
function clientTranscript(): Buffer {
  const block3 = Buffer.concat([literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', '/f/b'), literal(':authority', 'fuzz'),
    literal('content-type', GRPC), literal('x-tag', 'three')]);
  return Buffer.concat([
    CLIENT_PREFACE,
    frame(FrameType.SETTINGS, 0, 0, settingsPayload([
      [Setting.INITIAL_WINDOW_SIZE, 65_535], [Setting.MAX_FRAME_SIZE, 16_384], [Setting.ENABLE_PUSH, 0],
    ])),
    frame(FrameType.SETTINGS, Flag.ACK, 0),
    frame(FrameType.HEADERS, Flag.END_HEADERS, 1, encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', '/f/a'],
      [':authority', 'fuzz'], ['content-type', GRPC], ['te', 'trailers']])),
    frame(FrameType.DATA, Flag.END_STREAM, 1, MESSAGE),
    frame(FrameType.WINDOW_UPDATE, 0, 0, uint32Payload(1_000)),
    frame(FrameType.PING, 0, 0, Buffer.from('fuzzping')),
    frame(FrameType.HEADERS, 0, 3, block3.subarray(0, 20)),
    frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, block3.subarray(20)),
    frame(FrameType.DATA, 0, 3, MESSAGE),
    frame(FrameType.RST_STREAM, 0, 3, uint32Payload(ErrorCode.CANCEL)),
    frame(FrameType.HEADERS, Flag.END_HEADERS, 5, encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', '/f/c'],
      [':authority', 'fuzz'], ['x-tag', 'early']])),
    frame(FrameType.DATA, 0, 5, MESSAGE),
    frame(FrameType.GOAWAY, 0, 0, uint32Payload(5, ErrorCode.NO_ERROR)),
  ]);
}

interface StreamLog {
  readonly connection: number;
  readonly id: number;
  readonly ends: ServerStreamEnd[];
}

function knownEnd(end: ServerStreamEnd): boolean {
  switch (end.kind) {
    case 'done': return Object.keys(end).length === 1;
    case 'reset': return Number.isInteger(end.code) && end.code >= 0;
    case 'failed': return typeof end.message === 'string' && end.message.length > 0;
    default: return false;
  }
}

function answer(stream: ServerStream): void {
  stream.respond({ ':status': 200, 'content-type': GRPC });
  stream.write(REPLY);
  stream.end({ 'grpc-status': '0', 'grpc-message': 'ok' });
}

interface FuzzServer {
  readonly server: net.Server;
  readonly port: number;
  readonly logs: StreamLog[];
  /** Resolves when the n-th accepted connection is closed (onClose ran). */
  readonly closed: Array<Promise<void>>;
  readonly connections: ServerConnection[];
}

/** A server whose handler answers every stream: at once on its first request bytes when tagged `early`, else at its end. */
async function fuzzServer(): Promise<FuzzServer> {
  const logs: StreamLog[] = [];
  const closed: Array<Promise<void>> = [];
  const connections: ServerConnection[] = [];
  const server = net.createServer((socket) => {
    const index = connections.length;
    const connection = new ServerConnection(socket, {
      maxConcurrentStreams: 100,
      maxHeaderListSize: 16_384,
      onStream: (stream) => {
        const log: StreamLog = { connection: index, id: stream.id, ends: [] };
        logs.push(log);
        stream.handlers.data = () => {
          if (stream.headers['x-tag'] === 'early') answer(stream);
        };
        stream.handlers.end = () => answer(stream);
        stream.handlers.close = (end) => {
          log.ends.push(end);
          // A second close would surface as the server's "close handler failed" warning.
          if (log.ends.length > 1) throw new Error(`stream ${stream.id} closed ${log.ends.length} times`);
        };
      },
    });
    connections.push(connection);
    closed.push(new Promise((resolve) => connection.onClose(resolve)));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, logs, closed, connections };
}

/** A final well-behaved call from node's client: 200, the reply, grpc-status 0. */
async function nodeCall(port: number): Promise<{ status: unknown; body: Buffer; grpcStatus: unknown }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/pkg.Svc/Final', 'content-type': GRPC, 'te': 'trailers' });
      let status: unknown;
      let grpcStatus: unknown;
      const chunks: Buffer[] = [];
      req.on('response', (h) => {
        status = h[':status'];
      });
      req.on('trailers', (t) => {
        grpcStatus = t['grpc-status'];
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('close', () => resolve({ status, body: Buffer.concat(chunks), grpcStatus }));
      req.end(MESSAGE);
    });
  } finally {
    session.destroy();
  }
}

const uncaught: string[] = [];
const warnings: string[] = [];
const onUncaught = (err: Error) => uncaught.push(String(err.stack ?? err));
const onWarning = (w: Error) => warnings.push(w.message);

beforeAll(() => {
  process.on('uncaughtException', onUncaught);
  process.on('warning', onWarning);
});

afterAll(() => {
  process.off('uncaughtException', onUncaught);
  process.off('warning', onWarning);
  process.stdout.write(`fuzz (HTTP/2 server): ${tried} inputs tried\n`);
});

test('the unmutated transcript is served as a well-behaved client expects', async () => {
  const fuzz = await fuzzServer();
  try {
    const socket = net.connect({ host: '127.0.0.1', port: fuzz.port });
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.write(clientTranscript());
    // The client said GOAWAY: once its streams are done, the server closes the connection by itself.
    await waitFor('the server to close the connection', () => fuzz.closed.length === 1 && fuzz.connections[0].activeStreams === 0 && socket.readableEnded,
      { timeoutMs: 3_000, intervalMs: 5 });
    socket.destroy();
    expect(fuzz.logs.map((l) => [l.id, l.ends])).toEqual([
      [1, [{ kind: 'done' }]],
      [3, [{ kind: 'reset', code: ErrorCode.CANCEL }]],
      [5, [{ kind: 'done' }]],
    ]);
    const frames = parseFrames(Buffer.concat(chunks));
    expect(frames.filter((f) => f.streamId === 1).map((f) => [f.type, f.flags])).toEqual([
      [FrameType.HEADERS, Flag.END_HEADERS], [FrameType.DATA, 0], [FrameType.HEADERS, Flag.END_HEADERS + Flag.END_STREAM],
    ]);
    expect(frames.filter((f) => f.streamId === 1 && f.type === FrameType.DATA).map((f) => f.payload)).toEqual([REPLY]);
    expect(frames.filter((f) => f.streamId === 3)).toEqual([]);
    expect(frames.filter((f) => f.streamId === 5).map((f) => f.type)).toEqual([
      FrameType.HEADERS, FrameType.DATA, FrameType.HEADERS, FrameType.RST_STREAM,
    ]);
    expect(frames.filter((f) => f.type === FrameType.PING).map((f) => [f.flags, f.payload.toString()])).toEqual([[Flag.ACK, 'fuzzping']]);
    expect(frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  } finally {
    fuzz.server.close();
  }
});

describe.each(SEEDS)('seed %i', (seed) => {
  test('mutated client transcripts: every stream closes exactly once with an outcome, nothing escapes, the server keeps serving', async () => {
    const rng = new Rng(seed);
    const valid = clientTranscript();
    const fuzz = await fuzzServer();
    try {
      for (let i = 0; i < PER_SEED; i++) {
        let transcript = valid;
        for (let n = 1 + rng.int(3); n > 0; n--) transcript = mutateBytes(rng, transcript);
        tried++;
        const before = fuzz.logs.length;
        const socket = net.connect({ host: '127.0.0.1', port: fuzz.port });
        socket.on('error', () => undefined);
        // Read (and drop) whatever the server sends, so its writes never stall; then hang up after the transcript.
        socket.resume();
        const socketClosed = once(socket, 'close');
        socket.end(transcript);
        const what = `seed ${seed} transcript ${i} (${transcript.toString('hex').slice(0, 600)})`;
        await waitFor(`the server to close the connection of ${what}`, () => fuzz.closed.length > i, { timeoutMs: 5_000, intervalMs: 2 });
        await fuzz.closed[i];
        await socketClosed;
        // Let anything the server scheduled for this turn run before judging.
        await new Promise((resolve) => setImmediate(resolve));
        const logs = fuzz.logs.slice(before);
        const bad = logs.filter((l) => l.connection !== i || l.ends.length !== 1 || !knownEnd(l.ends[0]));
        if (bad.length > 0) throw new Error(`${what}: streams ended ${JSON.stringify(bad)}`);
        expect(fuzz.connections[i].activeStreams).toBe(0);
      }
      // No stream closed a second time later on.
      expect(fuzz.logs.filter((l) => l.ends.length !== 1)).toEqual([]);
      expect(uncaught).toEqual([]);
      expect(warnings.filter((w) => /handler failed|HTTP\/2 server/.test(w))).toEqual([]);
      const final = await nodeCall(fuzz.port);
      expect(final).toEqual({ status: 200, body: REPLY, grpcStatus: '0' });
    } finally {
      for (const c of fuzz.connections) c.destroy();
      fuzz.server.close();
    }
  });
});
