import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, mutateBytes, mutateJson } from './mutate';
import { ModelInferRequest } from '../../proto/gen/grpc_predict_v2';
import { ModelMeshService, RegisterModelRequest } from '../../proto/gen/model-mesh';
import { MeshOperatorService } from '../../proto/gen/operator';
import { CLIENT_PREFACE, FrameType, frame, literal } from '../harness/h2-frames';
import { inferModel, inferenceClient } from '../harness/inference';
import { MeshHandle, callMesh, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { httpGet, waitFor } from '../harness/wait';

/**
 * Hostile bytes at a real mesh: random and mutated HTTP/2 connections on the front door, well-framed gRPC calls with
 * mutated protobuf to every management and operator method and to the data plane, and mutated JSON to REST. The
 * process must stay alive and serving, with memory and open files back near where they started.
 */

const SEEDS = (JSON.parse(readFileSync(join(__dirname, 'corpus', 'seeds.json'), 'utf8')) as { frontDoor: number[] }).frontDoor;
const PER_SEED = { raw: 120, grpc: 200, rest: 150 };
const group = new ProcessGroup();
let dir: string;
let mesh: MeshHandle;
let tried = 0;

/** A whole client side of one gRPC call as bytes: preface, SETTINGS, HEADERS, DATA with END_STREAM. */
function grpcConnectionBytes(path: string, message: Buffer): Buffer {
  const headers = Buffer.concat([
    literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', path), literal(':authority', 'x'),
    literal('content-type', 'application/grpc'), literal('te', 'trailers'), literal('mm-model-id', 'm'),
  ]);
  const grpcFrame = Buffer.concat([Buffer.from([0]), Buffer.alloc(4), message]);
  grpcFrame.writeUInt32BE(message.length, 1);
  return Buffer.concat([
    CLIENT_PREFACE,
    frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0)),
    frame(FrameType.HEADERS, 0x4, 1, headers),
    frame(FrameType.DATA, 0x1, 1, grpcFrame),
  ]);
}

/** Writes bytes on a fresh connection and waits until the server closes it or a short while passes. */
function sendRaw(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 150);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', () => undefined);
    socket.write(bytes);
  });
}

/** One unary call with an arbitrary message body; resolves whatever happens (status, reset, refusal). */
function grpcCall(session: http2.ClientHttp2Session, path: string, message: Buffer, headers: http2.OutgoingHttpHeaders = {}): Promise<void> {
  return new Promise((resolve) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', 'te': 'trailers', 'grpc-timeout': '2S', ...headers });
    } catch {
      resolve();
      return;
    }
    const frameHeader = Buffer.alloc(5);
    frameHeader.writeUInt32BE(message.length, 1);
    stream.on('data', () => undefined);
    stream.on('error', () => resolve());
    stream.on('close', () => resolve());
    stream.end(Buffer.concat([frameHeader, message]));
  });
}

function postRest(port: number, path: string, body: string): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.setTimeout(3_000, () => req.destroy());
    req.on('error', () => resolve());
    req.end(body);
  });
}

function processStats(pid: number): { rssKiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  return { rssKiB: rss ? Number(rss[1]) : 0, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** (Re)registers the model the checks call: fuzzed management calls are real calls and may have unregistered it. */
async function registerM(): Promise<void> {
  const path = join(dir, 'm');
  writeFileSync(path, 'm: ');
  await callMesh(mesh.client, 'registerModel', { modelId: 'm', modelInfo: { type: 'example', path, key: '' }, loadNow: true, sync: true });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mm-fuzz-door-'));
  const runtime = await startExampleRuntime(group, 'runtime');
  // The default idle timeout (5 min) is far beyond the test: the open-files check below proves that connections cut by
  // the client, malformed or not, are closed by the server itself.
  mesh = await startMesh(group, { instanceId: 'fuzz', runtimePort: runtime.port, kvStore: 'embedded', rest: true });
}, 90_000);

afterAll(async () => {
  mesh?.client.close();
  await group.stopAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`fuzz (front door): ${tried} inputs tried\n`);
});

test.each(SEEDS)('seed %i: the mesh survives hostile HTTP/2, gRPC and REST input and keeps serving', async (seed) => {
  const rng = new Rng(seed);
  const client = inferenceClient(mesh.grpcPort);
  await registerM();
  expect(await inferModel(client, 'm', 'warm')).toBe('m: warm');
  const pid = mesh.process.pid!;
  const before = processStats(pid);

  const infer = Buffer.from(ModelInferRequest.encode(ModelInferRequest.fromPartial({
    modelName: 'm', inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], contents: { bytesContents: [Buffer.from('x')] } }],
  })).finish());
  const register = Buffer.from(RegisterModelRequest.encode(RegisterModelRequest.fromPartial({
    modelId: 'fuzzed', modelInfo: { type: 'example', path: join(dir, 'm'), key: '{}' },
  })).finish());
  const paths = [
    ...Object.values(ModelMeshService).map((m) => m.path), ...Object.values(MeshOperatorService).map((m) => m.path),
    '/inference.GRPCInferenceService/ModelInfer', '/inference.GRPCInferenceService/ModelMetadata', '/grpc.health.v1.Health/Check', '/no.Such/Method',
  ];

  // Raw connections: a valid gRPC exchange as bytes, mutated, or plain random bytes.
  const valid = grpcConnectionBytes('/inference.GRPCInferenceService/ModelInfer', infer);
  for (let i = 0; i < PER_SEED.raw; i++) {
    let bytes = rng.int(5) === 0 ? rng.bytes(1 + rng.int(200)) : valid;
    for (let n = 1 + rng.int(4); n > 0 && bytes.length > 0; n--) bytes = mutateBytes(rng, bytes);
    tried++;
    await sendRaw(mesh.grpcPort, bytes);
  }

  // Well-framed calls with mutated messages to every method, a few sessions at a time.
  const sessions: http2.ClientHttp2Session[] = [];
  const open = () => {
    const last = sessions[sessions.length - 1];
    if (last && !last.closed && !last.destroyed) return last;
    const next = http2.connect(`http://127.0.0.1:${mesh.grpcPort}`).on('error', () => undefined);
    sessions.push(next);
    return next;
  };
  for (let i = 0; i < PER_SEED.grpc; i++) {
    let message: Buffer = rng.pick([infer, register, Buffer.alloc(0)]);
    for (let n = rng.int(4); n > 0; n--) message = mutateBytes(rng, message);
    const headers: http2.OutgoingHttpHeaders = rng.int(3) === 0 ? { 'mm-vmodel-id': rng.bytes(8).toString('hex') } : {};
    tried++;
    await grpcCall(open(), rng.pick(paths), message, headers);
  }
  for (const session of sessions) session.destroy();

  // REST: mutated inference bodies and paths.
  const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: ['x'] }] });
  for (let i = 0; i < PER_SEED.rest; i++) {
    let text = body;
    for (let n = 1 + rng.int(3); n > 0; n--) text = mutateJson(rng, text);
    const path = rng.pick(['/v2/models/m/infer', '/v2/models/m/versions/1/infer', `/v2/models/${encodeURIComponent(rng.bytes(6).toString('latin1'))}/infer`, '/v2/models//infer']);
    tried++;
    await postRest(mesh.restPort!, path, text);
  }

  // Still alive and serving, and what the inputs took was given back.
  expect(mesh.process.running).toBe(true);
  expect((await httpGet(`http://127.0.0.1:${mesh.probePort}/live`)).status).toBe(200);
  await registerM();
  expect(await inferModel(client, 'm', 'after')).toBe('m: after');
  client.close();
  let last = before;
  const after = await waitFor(`open files to fall back near ${before.fds}`, () => {
    last = processStats(pid);
    return last.fds <= before.fds + 8 ? last : undefined;
  }, { timeoutMs: 15_000, intervalMs: 250 }).catch((err: Error) => {
    const files = readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '?';
      }
    });
    throw new Error(`${err.message}; still ${last.fds} open: ${files.join(' ')}`);
  });
  expect(after.rssKiB - before.rssKiB).toBeLessThan(96 * 1024);
  expect(mesh.process.log).not.toMatch(/unhandled|uncaught/i);
}, 180_000);
