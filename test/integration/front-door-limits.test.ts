import * as http2 from 'node:http2';
import * as net from 'node:net';
import { FrontDoor, FrontDoorOptions, startFrontDoor } from '../../runtime/src/api/front-door';
import { ServerStream } from '../../runtime/src/h2/server';
import { createLogger } from '../../runtime/src/log';
import { CLIENT_PREFACE, FrameType, frame, literal, parseFrames } from '../harness/h2-frames';
import { waitFor } from '../harness/wait';

/**
 * The front door's HTTP/2 limits on the real server: it advertises 1000 concurrent streams per connection and a 16 KiB
 * header list; a header list over the limit resets only that stream, before any handler sees it; a stream over the
 * advertised limit is refused (REFUSED_STREAM: never served, safe to retry) while the connection goes on serving.
 */

const doors: FrontDoor[] = [];
const sessions: http2.ClientHttp2Session[] = [];
const held: ServerStream[] = [];
/** Paths of the calls that reached the data plane. */
const handled: string[] = [];

/** `/ok` is answered at once; any other call is held open, to keep its stream counted. */
async function frontDoor(options: Partial<FrontDoorOptions> = {}): Promise<FrontDoor> {
  const door = await startFrontDoor({
    methods: new Map(),
    dataPlane: (stream, headers) => {
      handled.push(String(headers[':path']));
      if (headers[':path'] !== '/ok') {
        held.push(stream);
        return;
      }
      stream.respond({ ':status': 200 });
      stream.write('ok');
      stream.end();
    },
    maxMessageSize: 1024 * 1024,
    log: createLogger('silent'),
    ...options,
  }, '127.0.0.1', 0);
  doors.push(door);
  return door;
}

/** A client that has the server's settings, as any client has after its first round trip. */
async function connect(door: FrontDoor): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${door.port}`);
  session.on('error', () => undefined);
  sessions.push(session);
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  return session;
}

/** A call on `session`; resolves with the HTTP status, or the reset code when the stream was reset. */
function call(session: http2.ClientHttp2Session, path: string,
  headers: http2.OutgoingHttpHeaders = {}): Promise<{ status?: number; rstCode?: number }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', ...headers });
    let status: number | undefined;
    stream.on('response', (h) => { status = Number(h[':status']); });
    stream.on('error', () => undefined);
    stream.on('data', () => undefined);
    stream.on('close', () => resolve(status === undefined ? { rstCode: stream.rstCode } : { status }));
    stream.end();
  });
}

afterAll(async () => {
  for (const s of held) s.reset();
  for (const s of sessions) s.destroy();
  await Promise.all(doors.map((d) => d.close(0)));
});

test('advertises 1000 concurrent streams and a 16 KiB header list', async () => {
  const session = await connect(await frontDoor());
  expect(session.remoteSettings).toMatchObject({ maxConcurrentStreams: 1_000, maxHeaderListSize: 16_384 });
});

test('a header list over the limit resets that stream only; the connection keeps serving', async () => {
  const session = await connect(await frontDoor());
  expect(await call(session, '/big', { 'x-padding': 'p'.repeat(20_000) })).toEqual({ rstCode: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM });
  expect(handled).not.toContain('/big');
  expect(await call(session, '/ok', { 'x-padding': 'p'.repeat(8_000) })).toEqual({ status: 200 });
});

test('a stream over the concurrent-stream limit is refused; the connection and the server keep serving', async () => {
  const door = await frontDoor({ maxConcurrentStreams: 2 });
  const socket = net.connect({ host: '127.0.0.1', port: door.port });
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]); });
  socket.on('error', () => undefined);
  const headers = (path: string) => Buffer.concat([literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', path),
    literal(':authority', 'x'), literal('content-type', 'application/grpc')]);
  const END_HEADERS = 0x4;
  const END_STREAM = 0x1;
  const ACK = 0x1;
  // Three open streams at once (no END_STREAM), after acknowledging the server's settings so they apply.
  socket.write(Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0)), frame(FrameType.SETTINGS, ACK, 0, Buffer.alloc(0)),
    ...[1, 3, 5].map((id) => frame(FrameType.HEADERS, END_HEADERS, id, headers(`/hold-${id}`)))]));
  const resets = () => parseFrames(received).filter((f) => f.type === FrameType.RST_STREAM);
  await waitFor('the third stream to be refused', () => resets().length > 0);
  expect(resets().map((f) => [f.streamId, f.payload.readUInt32BE(0)])).toEqual([[5, http2.constants.NGHTTP2_REFUSED_STREAM]]);
  expect(handled.filter((p) => p.startsWith('/hold-'))).toEqual(['/hold-1', '/hold-3']);
  // The same connection still serves once a stream is free.
  socket.write(frame(FrameType.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 8])));
  socket.write(frame(FrameType.HEADERS, END_HEADERS + END_STREAM, 7, headers('/ok')));
  await waitFor('the call on the freed stream to be answered', () => parseFrames(received).some((f) => f.type === FrameType.HEADERS && f.streamId === 7));
  expect(parseFrames(received).some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  socket.destroy();
  expect(await call(await connect(door), '/ok')).toEqual({ status: 200 });
});
