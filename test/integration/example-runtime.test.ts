import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials, Metadata, ServiceError, status } from '@grpc/grpc-js';
import { EchoReply, ExampleStreamClient } from '../../proto/gen/example';
import { GRPCInferenceServiceClient, ModelInferRequest, ModelInferResponse } from '../../proto/gen/grpc_predict_v2';
import { ModelRuntimeClient, RuntimeStatusResponse, RuntimeStatusResponse_Status } from '../../proto/gen/model-runtime';
import { decodeRawBytes, encodeRawBytes } from '../../runtime/servers/shared/bytes-tensor';
import { VERSION } from '../../runtime/src/version';
import { freePort } from '../harness/ports';
import { ManagedProcess, ProcessGroup } from '../harness/processes';
import { waitFor, waitForTcpPort } from '../harness/wait';

/**
 * `modelmesh runtime example` as a real process, driven by independent grpc-js clients.
 *
 * The process runs the command's real entry (`main` of runtime/src/cli.ts, which the bin calls) under ts-node in
 * transpile-only mode: the sources under test, not a possibly stale runtime/dist, and no shared build output
 * rewritten while other test files may be reading it.
 */

const REPO = resolve(__dirname, '..', '..');
const ENTRY = 'require("./runtime/src/cli").main(process.argv.slice(1))'
  + '.then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; })';
const START_TIMEOUT_MS = 30_000;
const LOAD_DELAY_MS = 300;

const group = new ProcessGroup();
const clients: { close(): void }[] = [];
let modelDir: string;

function spawnRuntime(name: string, args: readonly string[], env: Record<string, string> = {}): ManagedProcess {
  return group.spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', ENTRY, 'runtime', 'example', ...args], {
    name, cwd: REPO, env: { TS_NODE_PROJECT: 'runtime/tsconfig.json', ...env },
  });
}

async function waitUntilServing(proc: ManagedProcess, port: number): Promise<void> {
  await waitFor(`${proc.name} accepting connections on ${port}`, async () => {
    if (!proc.running) throw new Error(`${proc.name} exited early:\n${proc.log}`);
    return waitForTcpPort(port, '127.0.0.1', { timeoutMs: 200 });
  }, { timeoutMs: START_TIMEOUT_MS });
}

interface Clients {
  readonly spi: InstanceType<typeof ModelRuntimeClient>;
  readonly inference: InstanceType<typeof GRPCInferenceServiceClient>;
  readonly stream: InstanceType<typeof ExampleStreamClient>;
}

function connect(port: number): Clients {
  const address = `127.0.0.1:${port}`;
  const result = {
    spi: new ModelRuntimeClient(address, credentials.createInsecure()),
    inference: new GRPCInferenceServiceClient(address, credentials.createInsecure()),
    stream: new ExampleStreamClient(address, credentials.createInsecure()),
  };
  clients.push(result.spi, result.inference, result.stream);
  return result;
}

type Callback<T> = (err: ServiceError | null, value: T) => void;
/** A unary call as a promise. */
function call<T>(invoke: (callback: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    invoke((err, value) => (err ? reject(err) : resolvePromise(value)));
  });
}

function modelHeader(modelId: string): Metadata {
  const metadata = new Metadata();
  metadata.set('mm-model-id', modelId);
  return metadata;
}

function textRequest(x: string, modelName = ''): ModelInferRequest {
  return ModelInferRequest.fromPartial({
    modelName, inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], contents: { bytesContents: [Buffer.from(x)] } }],
  });
}

function outputText(response: ModelInferResponse): string {
  expect(response.outputs).toHaveLength(1);
  expect(response.outputs[0]).toMatchObject({ name: 'output', datatype: 'BYTES', shape: [1] });
  const contents = response.outputs[0].contents?.bytesContents ?? [];
  expect(contents).toHaveLength(1);
  return contents[0].toString('utf8');
}

/** Opens an Echo stream, sends `texts`, half-closes, and collects the replies and the final status. */
function echo(stream: Clients['stream'], metadata: Metadata, texts: readonly string[]): Promise<{ replies: string[]; code: status; details: string }> {
  return new Promise((resolvePromise) => {
    const replies: string[] = [];
    const duplex = stream.echo(metadata);
    duplex.on('data', (reply: EchoReply) => replies.push(reply.text));
    duplex.on('error', () => undefined); // the status below carries the same code
    duplex.on('status', (s: { code: status; details: string }) => resolvePromise({ replies, code: s.code, details: s.details }));
    for (const text of texts) duplex.write({ text });
    duplex.end();
  });
}

function modelFile(name: string, text: string): string {
  const path = join(modelDir, name);
  writeFileSync(path, text);
  return path;
}

beforeAll(() => {
  modelDir = mkdtempSync(join(tmpdir(), 'mm-example-models-'));
});

afterAll(async () => {
  for (const client of clients) client.close();
  await group.stopAll();
  rmSync(modelDir, { recursive: true, force: true });
});

describe('modelmesh runtime example', () => {
  let port: number;
  let proc: ManagedProcess;
  let c: Clients;
  let hello: string;

  beforeAll(async () => {
    port = await freePort();
    proc = spawnRuntime('example-runtime', [
      '--port', String(port), '--load-delay-ms', String(LOAD_DELAY_MS), '--max-loading-concurrency', '2',
      '--capacity', '10000000', '--load-timeout-ms', '20000',
    ]);
    await waitUntilServing(proc, port);
    c = connect(port);
    hello = modelFile('hello.txt', 'Hello, ');
  }, START_TIMEOUT_MS + 5_000);

  test('runtimeStatus answers READY with its settings and allows any data-plane method', async () => {
    const answer = await call((cb) => c.spi.runtimeStatus({}, cb));
    expect(answer).toEqual({
      status: RuntimeStatusResponse_Status.READY,
      capacityInBytes: 10_000_000,
      maxLoadingConcurrency: 2,
      modelLoadingTimeoutMs: 20_000,
      defaultModelSizeInBytes: 1024 * 1024,
      runtimeVersion: VERSION,
      numericRuntimeVersion: 0,
      methodInfos: {},
      limitModelConcurrency: false,
      allowAnyMethod: true,
    });
  });

  test('loadModel reads the file; ModelInfer answers T + x, selected by header, binary header or model_name', async () => {
    expect(await call((cb) => c.spi.predictModelSize({ modelId: 'hello', modelType: 'example', modelPath: hello, modelKey: '' }, cb)))
      .toEqual({ sizeInBytes: 7 });
    expect(await call((cb) => c.spi.loadModel({ modelId: 'hello', modelType: 'example', modelPath: hello, modelKey: '' }, cb)))
      .toEqual({ sizeInBytes: 7, maxConcurrency: 0 });
    expect(await call((cb) => c.spi.modelSize({ modelId: 'hello' }, cb))).toEqual({ sizeInBytes: 7 });

    const byHeader = await call<ModelInferResponse>((cb) => c.inference.modelInfer(textRequest('world', 'ignored-vmodel'), modelHeader('hello'), cb));
    expect(outputText(byHeader)).toBe('Hello, world');
    expect(byHeader.modelName).toBe('hello');

    const binary = new Metadata();
    binary.set('mm-model-id-bin', Buffer.from('hello'));
    expect(outputText(await call<ModelInferResponse>((cb) => c.inference.modelInfer(textRequest('binary'), binary, cb)))).toBe('Hello, binary');
    expect(outputText(await call<ModelInferResponse>((cb) => c.inference.modelInfer(textRequest('body', 'hello'), cb)))).toBe('Hello, body');
  });

  test('ModelInfer takes and answers raw_input_contents (length-prefixed BYTES)', async () => {
    const request = ModelInferRequest.fromPartial({
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [1] }],
      rawInputContents: [encodeRawBytes([Buffer.from('raw')])],
    });
    const response = await call<ModelInferResponse>((cb) => c.inference.modelInfer(request, modelHeader('hello'), cb));
    expect(response.rawOutputContents).toHaveLength(1);
    expect(decodeRawBytes(response.rawOutputContents[0], 'output').map((b) => b.toString())).toEqual(['Hello, raw']);
  });

  test('bad input is INVALID_ARGUMENT naming the tensor', async () => {
    const twoElements = ModelInferRequest.fromPartial({
      inputs: [{ name: 'words', datatype: 'BYTES', shape: [2], contents: { bytesContents: [Buffer.from('a'), Buffer.from('b')] } }],
    });
    await expect(call((cb) => c.inference.modelInfer(twoElements, modelHeader('hello'), cb)))
      .rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/input tensor "words" holds 2 elements/) });
    const floats = ModelInferRequest.fromPartial({ inputs: [{ name: 'nums', datatype: 'FP32', shape: [1], contents: { fp32Contents: [1] } }] });
    await expect(call((cb) => c.inference.modelInfer(floats, modelHeader('hello'), cb)))
      .rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/input tensor "nums" has datatype FP32/) });
  });

  test('the KServe v2 health and metadata methods answer', async () => {
    expect(await call((cb) => c.inference.serverLive({}, cb))).toEqual({ live: true });
    expect(await call((cb) => c.inference.serverReady({}, cb))).toEqual({ ready: true });
    expect(await call((cb) => c.inference.serverMetadata({}, cb))).toMatchObject({ name: 'modelmesh-example-runtime', version: VERSION });
    expect(await call((cb) => c.inference.modelReady({ name: 'hello', version: '' }, cb))).toEqual({ ready: true });
    expect(await call((cb) => c.inference.modelReady({ name: 'absent', version: '' }, cb))).toEqual({ ready: false });
    expect(await call((cb) => c.inference.modelMetadata({ name: '', version: '' }, modelHeader('hello'), cb))).toEqual({
      name: 'hello',
      versions: [],
      platform: 'example',
      inputs: [{ name: 'input', datatype: 'BYTES', shape: [-1] }],
      outputs: [{ name: 'output', datatype: 'BYTES', shape: [-1] }],
    });
  });

  test('Echo answers each message of a bidirectional stream with T + text', async () => {
    expect(await echo(c.stream, modelHeader('hello'), ['one', 'two', 'three'])).toEqual({
      replies: ['Hello, one', 'Hello, two', 'Hello, three'], code: status.OK, details: 'OK',
    });
  });

  test('a model that is not loaded is NOT_FOUND naming it, on ModelInfer, ModelMetadata and Echo', async () => {
    await expect(call((cb) => c.inference.modelInfer(textRequest('x'), modelHeader('never-loaded'), cb)))
      .rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining('never-loaded') });
    await expect(call((cb) => c.inference.modelMetadata({ name: 'never-loaded', version: '' }, cb)))
      .rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining('never-loaded') });
    const streamed = await echo(c.stream, modelHeader('never-loaded'), ['x']);
    expect(streamed).toMatchObject({ replies: [], code: status.NOT_FOUND, details: expect.stringContaining('never-loaded') });
  });

  test('loading a path whose file name contains "fail" fails, saying the example runtime refuses it', async () => {
    const path = join(modelDir, 'will-fail.txt');
    await expect(call((cb) => c.spi.loadModel({ modelId: 'doomed', modelType: 'example', modelPath: path, modelKey: '' }, cb)))
      .rejects.toMatchObject({ code: status.INTERNAL, details: expect.stringMatching(/example runtime refuses to load .*will-fail\.txt.*"fail"/) });
    await expect(call((cb) => c.inference.modelInfer(textRequest('x'), modelHeader('doomed'), cb)))
      .rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  test('a missing file is NOT_FOUND and a foreign model type INVALID_ARGUMENT, both explained', async () => {
    const missing = join(modelDir, 'no-such-model.txt');
    await expect(call((cb) => c.spi.loadModel({ modelId: 'ghost', modelType: 'example', modelPath: missing, modelKey: '' }, cb)))
      .rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining(missing) });
    await expect(call((cb) => c.spi.loadModel({ modelId: 'onnx-one', modelType: 'onnx', modelPath: hello, modelKey: '' }, cb)))
      .rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/model type "onnx" is not served/) });
  });

  test('loads beyond --max-loading-concurrency wait their turn; a repeated load is idempotent', async () => {
    const ids = ['queued-1', 'queued-2', 'queued-3', 'queued-4'];
    const path = modelFile('queued.txt', 'Q:');
    const started = Date.now();
    const loads = ids.map((modelId) => call((cb) => c.spi.loadModel({ modelId, modelType: 'example', modelPath: path, modelKey: '' }, cb)));
    const again = call((cb) => c.spi.loadModel({ modelId: 'queued-1', modelType: 'example', modelPath: path, modelKey: '' }, cb));
    expect(await Promise.all([...loads, again])).toEqual(Array(5).fill({ sizeInBytes: 2, maxConcurrency: 0 }));
    // Four loads of LOAD_DELAY_MS each through two slots take at least two rounds.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * LOAD_DELAY_MS);

    const lines = await waitFor('a log line per queued load', () => {
      const found = [...proc.log.matchAll(/loading model (queued-\d) from .* \(load slots busy: (\d+)\/(\d+)/g)];
      return found.length >= ids.length ? found : undefined;
    });
    expect(lines.map((m) => m[1]).sort()).toEqual(ids); // one each: the repeated load joined the first
    const busy = lines.map((m) => Number(m[2]));
    expect(lines.every((m) => m[3] === '2')).toBe(true);
    expect(Math.max(...busy)).toBe(2);

    for (const modelId of ids) {
      expect(outputText(await call<ModelInferResponse>((cb) => c.inference.modelInfer(textRequest(modelId), modelHeader(modelId), cb))))
        .toBe(`Q:${modelId}`);
    }
  });

  test('unloadModel removes the model (NOT_FOUND afterwards); unloading an unknown id succeeds', async () => {
    const path = modelFile('bye.txt', 'Bye ');
    await call((cb) => c.spi.loadModel({ modelId: 'bye', modelType: 'example', modelPath: path, modelKey: '' }, cb));
    expect(outputText(await call<ModelInferResponse>((cb) => c.inference.modelInfer(textRequest('now'), modelHeader('bye'), cb)))).toBe('Bye now');
    expect(await call((cb) => c.spi.unloadModel({ modelId: 'bye' }, cb))).toEqual({});
    await expect(call((cb) => c.inference.modelInfer(textRequest('now'), modelHeader('bye'), cb)))
      .rejects.toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining('bye') });
    await expect(call((cb) => c.spi.modelSize({ modelId: 'bye' }, cb))).rejects.toMatchObject({ code: status.NOT_FOUND });
    expect(await call((cb) => c.spi.unloadModel({ modelId: 'bye' }, cb))).toEqual({});
    expect(await call((cb) => c.spi.unloadModel({ modelId: 'never-there' }, cb))).toEqual({});
    await waitFor('the unload log line', () => proc.log.includes('unloaded model bye (4 bytes)'));
  });

  test('an unload during a load cancels it: the model is not loaded afterwards', async () => {
    const path = modelFile('slow.txt', 'Slow ');
    const loading = call((cb) => c.spi.loadModel({ modelId: 'slow', modelType: 'example', modelPath: path, modelKey: '' }, cb));
    // Unload only once the runtime has begun the load: sent earlier, it would find nothing and the load would win.
    await waitFor('the load of slow to start', () => proc.log.includes('loading model slow '));
    await call((cb) => c.spi.unloadModel({ modelId: 'slow' }, cb));
    await expect(loading).rejects.toMatchObject({ code: status.ABORTED, details: expect.stringContaining('cancelled by unloadModel') });
    await expect(call((cb) => c.inference.modelInfer(textRequest('x'), modelHeader('slow'), cb))).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  test('runtimeStatus purges every loaded model before answering READY', async () => {
    expect(await call((cb) => c.inference.modelReady({ name: 'hello', version: '' }, cb))).toEqual({ ready: true });
    expect((await call<RuntimeStatusResponse>((cb) => c.spi.runtimeStatus({}, cb))).status).toBe(RuntimeStatusResponse_Status.READY);
    await expect(call((cb) => c.inference.modelInfer(textRequest('x'), modelHeader('hello'), cb))).rejects.toMatchObject({ code: status.NOT_FOUND });
    expect(proc.log).toMatch(/purged \d+ loaded model\(s\)/);
  });

  test('SIGTERM shuts it down cleanly with exit code 0', async () => {
    expect(await proc.stop('SIGTERM')).toBe(0);
    expect(proc.log).toMatch(/SIGTERM: shutting down/);
    expect(proc.log).toMatch(/example-runtime: stopped/);
  });
});

describe('modelmesh runtime example configuration', () => {
  test('MM_RUNTIME_PORT chooses the port; --model-size is reported for every model; defaults are the design\'s', async () => {
    const port = await freePort();
    const proc = spawnRuntime('example-runtime-env', ['--model-size', '4096'], { MM_RUNTIME_PORT: String(port) });
    await waitUntilServing(proc, port);
    const c = connect(port);
    expect(await call((cb) => c.spi.runtimeStatus({}, cb))).toMatchObject({
      status: RuntimeStatusResponse_Status.READY,
      capacityInBytes: 256 * 1024 * 1024,
      maxLoadingConcurrency: 4,
      modelLoadingTimeoutMs: 30_000,
      defaultModelSizeInBytes: 4096,
    });
    const path = modelFile('sized.txt', 'tiny');
    expect(await call((cb) => c.spi.predictModelSize({ modelId: 'sized', modelType: 'example', modelPath: path, modelKey: '' }, cb)))
      .toEqual({ sizeInBytes: 4096 });
    expect(await call((cb) => c.spi.loadModel({ modelId: 'sized', modelType: 'example', modelPath: path, modelKey: '' }, cb)))
      .toEqual({ sizeInBytes: 4096, maxConcurrency: 0 });
    expect(await proc.stop('SIGINT')).toBe(0);
  }, START_TIMEOUT_MS + 10_000);

  test('bad flags and a bad MM_RUNTIME_PORT exit non-zero, naming the flag and what was expected', async () => {
    const badCapacity = spawnRuntime('bad-capacity', ['--capacity', '12GB']);
    const badConcurrency = spawnRuntime('bad-concurrency', ['--max-loading-concurrency', '0']);
    const badEnv = spawnRuntime('bad-env', [], { MM_RUNTIME_PORT: 'eighty' });
    expect(await Promise.all([badCapacity, badConcurrency, badEnv].map((p) => p.waitForExit()))).toEqual([2, 2, 2]);
    expect(badCapacity.log).toContain('--capacity must be a whole number of bytes greater than 0, got "12GB"');
    expect(badConcurrency.log).toContain('--max-loading-concurrency must be a whole number, 1 or more, got "0"');
    expect(badEnv.log).toContain('MM_RUNTIME_PORT must be a port number (0-65535), got "eighty"');
  }, START_TIMEOUT_MS);

  test('a port already in use exits 1 saying where it could not listen', async () => {
    const port = await freePort();
    const first = spawnRuntime('port-owner', ['--port', String(port)]);
    await waitUntilServing(first, port);
    const second = spawnRuntime('port-taker', ['--port', String(port)]);
    expect(await second.waitForExit()).toBe(1);
    expect(second.log).toContain(`cannot listen on 127.0.0.1:${port}`);
    expect(await first.stop()).toBe(0);
  }, START_TIMEOUT_MS + 10_000);
});
