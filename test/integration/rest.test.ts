import { isUtf8 } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, ServiceError, credentials } from '@grpc/grpc-js';
import { GRPCInferenceServiceClient, ModelInferRequest, ModelInferResponse } from '../../proto/gen/grpc_predict_v2';
import { ModelRuntimeClient } from '../../proto/gen/model-runtime';
import { createLogger } from '../../runtime/src/log';
import { MAX_HEADER_BYTES, RestServer, startRestServer } from '../../runtime/src/rest';
import { VERSION } from '../../runtime/src/version';
import { ExampleRuntimeHandle, startExampleRuntime } from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ProcessGroup } from '../harness/processes';

/**
 * The KServe v2 REST server against a real example runtime (`modelmesh runtime example`), checked with plain node
 * HTTP requests and compared with the same calls made over grpc-js.
 */

const MAX_BODY = 16 * 1024;
const log = createLogger('silent');
const group = new ProcessGroup();
const servers: RestServer[] = [];
let modelDir: string;
let runtime: ExampleRuntimeHandle;
let grpc: GRPCInferenceServiceClient;
let spi: ModelRuntimeClient;
let rest: RestServer;
let restRaw: RestServer;
let serverReady = true;

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
  reusedSocket: boolean;
  /** Whether the server sent `100 Continue`. */
  continued: boolean;
}

interface RequestOptions {
  body?: string | Buffer;
  headers?: http.OutgoingHttpHeaders;
  agent?: http.Agent;
  /** Write the body in chunks of this size (chunked transfer encoding unless content-length is set). */
  chunkSize?: number;
  /** Send `Expect: 100-continue` and the body only once the server asks for it. */
  expectContinue?: boolean;
}

/** One HTTP request with node:http. Resolves on the answer; write errors after the server answered are expected. */
function httpRequest(port: number, method: string, path: string, options: RequestOptions = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    let continued = false;
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    // Node sends the headers at once when they expect 100-continue, so the length must be among them.
    const headers = { ...options.headers, ...(options.expectContinue ? { 'expect': '100-continue', 'content-length': body?.length ?? 0 } : {}) };
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: options.agent ?? false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, reusedSocket: req.reusedSocket, continued });
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    if (options.expectContinue) {
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
    } else if (body && options.chunkSize) {
      for (let i = 0; i < body.length && !answered; i += options.chunkSize) req.write(body.subarray(i, i + options.chunkSize));
      req.end();
    } else {
      req.end(body);
    }
  });
}

const post = (port: number, path: string, body: unknown, options: RequestOptions = {}) => httpRequest(port, 'POST', path, {
  ...options, body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...options.headers },
});
const get = (port: number, path: string, options: RequestOptions = {}) => httpRequest(port, 'GET', path, options);

const textInput = (...texts: unknown[]) => ({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [texts.length], data: texts }] });

function unary<T>(invoke: (callback: (err: ServiceError | null, value: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    invoke((err, value) => (err ? reject(err) : resolve(value)));
  });
}

function modelHeader(modelId: string): Metadata {
  const metadata = new Metadata();
  metadata.set('mm-model-id', modelId);
  return metadata;
}

function grpcInfer(modelId: string, element: Buffer, id = ''): Promise<ModelInferResponse> {
  const request = ModelInferRequest.fromPartial({
    modelName: modelId, id, inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], contents: { bytesContents: [element] } }],
  });
  return unary((cb) => grpc.modelInfer(request, modelHeader(modelId), cb));
}

/** The KServe v2 JSON a gRPC answer corresponds to, written out independently of the code under test. */
function expectedJson(response: ModelInferResponse): unknown {
  return {
    model_name: response.modelName,
    model_version: response.modelVersion,
    id: response.id,
    outputs: response.outputs.map((output) => ({
      name: output.name,
      datatype: output.datatype,
      shape: output.shape,
      data: (output.contents?.bytesContents ?? []).map((b) => (isUtf8(b) ? b.toString('utf8') : { b64: b.toString('base64') })),
    })),
  };
}

beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'mm-rest-models-'));
  runtime = await startExampleRuntime(group, 'rest example runtime');
  const target = `127.0.0.1:${runtime.port}`;
  grpc = new GRPCInferenceServiceClient(target, credentials.createInsecure());
  spi = new ModelRuntimeClient(target, credentials.createInsecure());
  const path = join(modelDir, 'hello.txt');
  writeFileSync(path, 'Hello, ');
  await unary((cb) => spi.loadModel({ modelId: 'hello', modelType: 'example', modelPath: path, modelKey: '' }, cb));
  await unary((cb) => spi.loadModel({ modelId: 'grüße/de', modelType: 'example', modelPath: path, modelKey: '' }, cb));

  // Straight at the runtime, which selects models by mm-model-id (the mesh reads the default, mm-vmodel-id).
  rest = await startRestServer({
    port: 0, host: '127.0.0.1', grpcTarget: target, maxBodyBytes: MAX_BODY, log, modelHeader: 'mm-model-id', isReady: () => serverReady,
  });
  restRaw = await startRestServer({
    port: 0,
    host: '127.0.0.1',
    grpcTarget: target,
    log,
    modelHeader: 'mm-model-id',
    rawInputContents: true,
    serverMetadata: { name: 'modelmesh', version: 'test-version', extensions: ['binary'] },
  });
  servers.push(rest, restRaw);
}, 90_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(1_000)));
  grpc?.close();
  spi?.close();
  await group.stopAll();
  rmSync(modelDir, { recursive: true, force: true });
});

describe('KServe v2 REST against the example runtime', () => {
  test('infer answers exactly what the same grpc-js ModelInfer answers', async () => {
    const viaRest = await post(rest.port, '/v2/models/hello/infer', { id: 'req-7', ...textInput('world') });
    expect(viaRest.status).toBe(200);
    expect(viaRest.headers['content-type']).toBe('application/json');
    const viaGrpc = await grpcInfer('hello', Buffer.from('world'), 'req-7');
    expect(viaRest.json).toEqual(expectedJson(viaGrpc));
    expect(viaRest.json).toEqual({
      model_name: 'hello', model_version: '', id: 'req-7', outputs: [{ name: 'output', datatype: 'BYTES', shape: [1], data: ['Hello, world'] }],
    });
  });

  test('BYTES given as {"b64"} round-trip, and bytes that are not UTF-8 come back as {"b64"}', async () => {
    const element = Buffer.from([0xff, 0xfe, 0x00]);
    const viaRest = await post(rest.port, '/v2/models/hello/infer', textInput({ b64: element.toString('base64') }));
    expect(viaRest.status).toBe(200);
    expect(viaRest.json).toEqual(expectedJson(await grpcInfer('hello', element)));
    expect((viaRest.json as { outputs: { data: unknown[] }[] }).outputs[0].data)
      .toEqual([{ b64: Buffer.concat([Buffer.from('Hello, '), element]).toString('base64') }]);
  });

  test('nested data, a version in the path and raw contents give the same answer', async () => {
    const nested = await post(rest.port, '/v2/models/hello/versions/1/infer',
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1, 1], data: [['nested']] }] });
    expect(nested.status).toBe(200);
    expect((nested.json as { outputs: { data: unknown[] }[] }).outputs[0].data).toEqual(['Hello, nested']);

    const viaRaw = await post(restRaw.port, '/v2/models/hello/infer', textInput('raw'));
    expect(viaRaw.status).toBe(200);
    expect(viaRaw.json).toEqual(expectedJson(await grpcInfer('hello', Buffer.from('raw'))));
  });

  test('a model name that is not ASCII is routed with the -bin header', async () => {
    const answer = await post(rest.port, `/v2/models/${encodeURIComponent('grüße/de')}/infer`, textInput('Welt'));
    expect(answer).toMatchObject({ status: 200, json: { model_name: 'grüße/de', outputs: [{ data: ['Hello, Welt'] }] } });
  });

  test('connections are kept alive between requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Error answers to fully read requests keep the connection too.
      const answers = [
        await post(rest.port, '/v2/models/hello/infer', textInput('k0'), { agent }),
        await get(rest.port, '/v2/nowhere', { agent }),
        await post(rest.port, '/v2/models/hello/infer', '{not json', { agent }),
        await post(rest.port, '/v2/models/hello/infer', textInput('k3'), { agent }),
      ];
      expect(answers.map((a) => a.status)).toEqual([200, 404, 400, 200]);
      expect(answers.map((a) => a.reusedSocket)).toEqual([false, true, true, true]);
    } finally {
      agent.destroy();
    }
  });

  test('model metadata is the runtime\'s ModelMetadata as JSON', async () => {
    const viaGrpc = await unary((cb) => grpc.modelMetadata({ name: 'hello', version: '' }, modelHeader('hello'), cb));
    const viaRest = await get(rest.port, '/v2/models/hello');
    expect(viaRest.status).toBe(200);
    expect(viaRest.json).toEqual(viaGrpc);
    expect(viaRest.json).toEqual({
      name: 'hello',
      versions: [],
      platform: 'example',
      inputs: [{ name: 'input', datatype: 'BYTES', shape: [-1] }],
      outputs: [{ name: 'output', datatype: 'BYTES', shape: [-1] }],
    });
    expect((await get(rest.port, '/v2/models/hello/versions/1')).status).toBe(200);
  });

  test('model ready is 200 for a loaded model and 503 for one the runtime says is not ready', async () => {
    expect(await get(rest.port, '/v2/models/hello/ready')).toMatchObject({ status: 200, json: { name: 'hello', ready: true } });
    expect(await get(rest.port, '/v2/models/hello/versions/2/ready')).toMatchObject({ status: 200 });
    expect(await get(rest.port, '/v2/models/absent/ready')).toMatchObject({ status: 503, json: { error: 'model absent is not ready' } });
  });

  test('health answers without a model: live always, ready from the callback', async () => {
    expect(await get(rest.port, '/v2/health/live')).toMatchObject({ status: 200, json: { live: true } });
    expect(await get(rest.port, '/v2/health/ready')).toMatchObject({ status: 200, json: { ready: true } });
    serverReady = false;
    try {
      expect(await get(rest.port, '/v2/health/ready')).toMatchObject({ status: 503, json: { ready: false } });
    } finally {
      serverReady = true;
    }
    expect(await httpRequest(rest.port, 'HEAD', '/v2/health/live')).toMatchObject({ status: 200, text: '' });
  });

  test('server metadata comes from the target, or from the options when given', async () => {
    expect(await get(rest.port, '/v2')).toMatchObject({
      status: 200, json: { name: 'modelmesh-example-runtime', version: VERSION, extensions: [] },
    });
    expect(await get(restRaw.port, '/v2')).toMatchObject({ status: 200, json: { name: 'modelmesh', version: 'test-version', extensions: ['binary'] } });
  });
});

describe('KServe v2 REST errors', () => {
  const infer = (body: unknown, options?: RequestOptions) => post(rest.port, '/v2/models/hello/infer', body, options);

  test('malformed JSON is 400 naming the problem', async () => {
    const answer = await infer('{"inputs": [');
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({ error: expect.stringMatching(/^the request body is not valid JSON: .+/) });
    expect(await infer('')).toMatchObject({ status: 400, json: { error: 'the request body is empty; send a JSON inference request' } });
    expect(await infer('[1]')).toMatchObject({ status: 400, json: { error: expect.stringContaining('must be a JSON object') } });
  });

  test('a shape that does not match the data is 400 naming the tensor', async () => {
    const answer = await infer({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['only one'] }] });
    expect(answer).toMatchObject({ status: 400, json: { error: 'input tensor "text" has shape [2] (2 elements) but its data holds 1' } });
  });

  test('the model\'s own INVALID_ARGUMENT is 400 with the runtime\'s message', async () => {
    const body = { inputs: [{ name: 'nums', datatype: 'FP32', shape: [1], data: [1] }] };
    const viaGrpc = await unary((cb) => grpc.modelInfer(ModelInferRequest.fromPartial({
      modelName: 'hello', inputs: [{ name: 'nums', datatype: 'FP32', shape: [1], contents: { fp32Contents: [1] } }],
    }), modelHeader('hello'), cb)).catch((err: ServiceError) => err);
    expect(await infer(body)).toMatchObject({ status: 400, json: { error: (viaGrpc as ServiceError).details } });
  });

  test('an unknown model is 404 with the runtime\'s message', async () => {
    const viaGrpc = await grpcInfer('never-loaded', Buffer.from('x')).catch((err: ServiceError) => err);
    const answer = await post(rest.port, '/v2/models/never-loaded/infer', textInput('x'));
    expect(answer).toMatchObject({ status: 404, json: { error: (viaGrpc as ServiceError).details } });
    expect((answer.json as { error: string }).error).toContain('never-loaded');
    expect(await get(rest.port, '/v2/models/never-loaded')).toMatchObject({ status: 404, json: { error: expect.stringContaining('never-loaded') } });
  });

  test('a body over maxBodyBytes is 413, declared or streamed, and the server keeps serving', async () => {
    const big = JSON.stringify(textInput('x'.repeat(MAX_BODY)));
    const declared = await infer(big);
    expect(declared).toMatchObject({ status: 413, json: { error: `the request body is ${big.length} bytes, over the limit of ${MAX_BODY} bytes` } });
    expect(declared.headers.connection).toBe('close');

    const streamed = await infer(JSON.stringify(textInput('y'.repeat(MAX_BODY * 8))), { chunkSize: 1024 });
    expect(streamed).toMatchObject({ status: 413, json: { error: `the request body is more than ${MAX_BODY} bytes, over the limit of ${MAX_BODY} bytes` } });

    // With Expect: 100-continue the refusal comes before the body is sent; a body within the limit is asked for.
    expect(await infer(big, { expectContinue: true })).toMatchObject({ status: 413, continued: false });
    expect(await infer(textInput('continued'), { expectContinue: true })).toMatchObject({ status: 200, continued: true });
    expect(await infer(textInput('still here'))).toMatchObject({ status: 200 });
  });

  test('headers over 16 KiB are 431 and the server keeps serving', async () => {
    const answer = await infer(textInput('x'), { headers: { 'x-padding': 'p'.repeat(MAX_HEADER_BYTES) } });
    expect(answer.status).toBe(431);
    expect(await infer(textInput('x'), { headers: { 'x-padding': 'p'.repeat(MAX_HEADER_BYTES / 2) } })).toMatchObject({ status: 200 });
  });

  test('a wrong method is 405 with Allow; an unknown path is 404', async () => {
    const wrong = await get(rest.port, '/v2/models/hello/infer');
    expect(wrong).toMatchObject({ status: 405, json: { error: 'GET is not allowed on /v2/models/hello/infer; use POST' } });
    expect(wrong.headers.allow).toBe('POST');
    expect((await httpRequest(rest.port, 'DELETE', '/v2/health/live')).headers.allow).toBe('GET, HEAD');
    expect(await get(rest.port, '/v1/models/hello:predict')).toMatchObject({ status: 404, json: { error: expect.stringContaining('no route for') } });
    expect(await get(rest.port, '/v2/models/%E0%A4%A')).toMatchObject({ status: 400, json: { error: expect.stringContaining('percent-encoding') } });
  });

  test('the binary data extension and compressed bodies are refused clearly', async () => {
    expect(await infer(textInput('x'), { headers: { 'inference-header-content-length': '10' } }))
      .toMatchObject({ status: 400, json: { error: expect.stringContaining('binary tensor data extension') } });
    expect(await infer(textInput('x'), { headers: { 'content-encoding': 'gzip' } })).toMatchObject({ status: 415 });
  });

  test('a client that goes away mid-body or sends garbage does not disturb the server', async () => {
    await new Promise<void>((resolve) => {
      const socket = net.connect(rest.port, '127.0.0.1', () => {
        socket.write('POST /v2/models/hello/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{"inputs": [');
        socket.destroy();
        resolve();
      });
    });
    const garbage = await new Promise<string>((resolve) => {
      const socket = net.connect(rest.port, '127.0.0.1', () => socket.write('\x00\x01 not http at all\r\n\r\n'));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', () => undefined);
    });
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect(await infer(textInput('after'))).toMatchObject({ status: 200 });
  });

  test('an unreachable target is 503; a target that never answers is 504 after requestTimeoutMs', async () => {
    const closedPort = await freePort();
    const unreachable = await startRestServer({ port: 0, host: '127.0.0.1', grpcTarget: `127.0.0.1:${closedPort}`, log });
    servers.push(unreachable);
    expect(await post(unreachable.port, '/v2/models/hello/infer', textInput('x'))).toMatchObject({ status: 503, json: { error: expect.any(String) } });

    // A TCP listener that accepts and never speaks: the call can only end by its deadline.
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const stalled = await startRestServer({
        port: 0, host: '127.0.0.1', grpcTarget: `127.0.0.1:${(silent.address() as net.AddressInfo).port}`, log, requestTimeoutMs: 300,
      });
      servers.push(stalled);
      const started = Date.now();
      expect(await post(stalled.port, '/v2/models/hello/infer', textInput('x'))).toMatchObject({ status: 504, json: { error: expect.any(String) } });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});
