import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, ServiceError, credentials, status } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { EchoReply, ExampleStreamClient } from '../../proto/gen/example';
import { GRPCInferenceServiceClient } from '../../proto/gen/grpc_predict_v2';
import { ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { bytesRequest, infer, inferenceClient, outputText } from '../harness/inference';
import { ExampleRuntimeHandle, MeshHandle, callMesh, etcdConnectionFile, startExampleRuntime, startMesh } from '../harness/modelmesh';
import { ProcessGroup } from '../harness/processes';
import { sharedEtcdEndpoint, uniquePrefix } from '../harness/shared-etcd';
import { waitFor } from '../harness/wait';

/**
 * The data plane through the front door: real grpc-js clients call any instance, which routes to the copy, loads
 * just in time, retries on failure, and passes streams through a peer hop.
 */

const MiB = 1024 * 1024;
const MAX_MESSAGE = MiB;
const LOAD_DELAY_MS = 400;
const SERVICE = 'modelmesh-serving';
/** Low enough that a test's steady trickle makes a model "hot". */
const SCALE_UP_RPM = 120;

const group = new ProcessGroup();
const rootPrefix = uniquePrefix('dataplane');
const namespace = `${rootPrefix}/mm/${SERVICE}/`.replace(/\/{2,}/g, '/');
const clients: Array<{ close(): void }> = [];
let etcd: Etcd3;
let runtimes: ExampleRuntimeHandle[];
let meshes: MeshHandle[];
let modelDir: string;

function modelFile(name: string, text: string): string {
  const path = join(modelDir, name);
  writeFileSync(path, text);
  return path;
}

function inferenceClientOf(mesh: MeshHandle): GRPCInferenceServiceClient {
  const client = inferenceClient(mesh.grpcPort, { 'grpc.max_send_message_length': 8 * MiB });
  clients.push(client);
  return client;
}

const inferRequest = (modelName: string, input: string) => bytesRequest(input, modelName);

async function expectStatusError(promise: Promise<unknown>, code: status, message: RegExp): Promise<void> {
  const err = await promise.then(() => undefined, (e: ServiceError) => e);
  expect(err).toBeDefined();
  expect({ code: err!.code, details: err!.details }).toEqual({ code, details: expect.stringMatching(message) });
}

/** Registers a model and loads its one copy on exactly the given instance (the peers' internal "load here" call). */
async function loadOn(mesh: MeshHandle, modelId: string, text: string): Promise<void> {
  await callMesh(mesh.client, 'registerModel', { modelId, modelInfo: { type: 'example', path: modelFile(modelId, text), key: '' } });
  expect((await callMesh(mesh.client, 'ensureLoaded', { modelId, sync: true }, { 'mm-load-here': 'true' })).status).toBe(ModelStatus.LOADED);
  const copies = await callMesh(mesh.client, 'getModelStatus', { modelId });
  expect(copies.modelCopyInfos.filter((c) => c.copyStatus === ModelStatus.LOADED).map((c) => c.location)).toEqual([mesh.instanceId]);
}

beforeAll(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'mm-dataplane-models-'));
  etcd = new Etcd3({ hosts: sharedEtcdEndpoint() });
  const kvStore = `etcd:${etcdConnectionFile(sharedEtcdEndpoint(), rootPrefix)}`;
  runtimes = await Promise.all([0, 1, 2].map((i) => startExampleRuntime(group, `runtime ${i}`, ['--load-delay-ms', String(LOAD_DELAY_MS)])));
  meshes = await Promise.all(runtimes.map((runtime, i) => startMesh(group, {
    instanceId: `mesh-${i}`, runtimePort: runtime.port, kvStore, rest: i === 0, env: { MM_SVC_GRPC_MAX_MSG_SIZE: String(MAX_MESSAGE), MM_SCALEUP_RPM_THRESHOLD: String(SCALE_UP_RPM) },
  })));
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const mesh of meshes ?? []) mesh.client.close();
  await group.stopAll();
  etcd?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

describe('routing', () => {
  test('a client of one instance gets answers from a model whose only copy is on another instance', async () => {
    await loadOn(meshes[1], 'remote', 'from mesh-1: ');
    const client = inferenceClientOf(meshes[0]);
    expect(outputText(await infer(client, inferRequest('', 'by header'), { 'mm-model-id': 'remote' }))).toBe('from mesh-1: by header');
    expect(outputText(await infer(client, inferRequest('remote', 'by model_name')))).toBe('from mesh-1: by model_name');
  });

  test('a vmodel id resolves to its active model, by header or by model_name', async () => {
    await callMesh(meshes[0].client, 'setVModel', { vModelId: 'alias', targetModelId: 'remote' });
    const client = inferenceClientOf(meshes[2]);
    expect(outputText(await infer(client, inferRequest('', 'x'), { 'mm-vmodel-id': 'alias' }))).toBe('from mesh-1: x');
    expect(outputText(await infer(client, inferRequest('alias', 'y')))).toBe('from mesh-1: y');
  });

  test('the bidirectional Echo stream round-trips through a peer hop', async () => {
    const client = new ExampleStreamClient(`127.0.0.1:${meshes[2].grpcPort}`, credentials.createInsecure());
    clients.push(client);
    const md = new Metadata();
    md.set('mm-model-id', 'remote');
    const call = client.echo(md);
    const replies: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (reply: EchoReply) => replies.push(reply.text));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (const text of ['one', 'two', 'three']) {
      call.write({ text });
      await waitFor(`reply to ${text}`, () => replies.length === ['one', 'two', 'three'].indexOf(text) + 1);
    }
    call.end();
    await done;
    expect(replies).toEqual(['from mesh-1: one', 'from mesh-1: two', 'from mesh-1: three']);
  });

  test('a cache miss loads the model just in time on the instance called, and concurrent requests share one load', async () => {
    await callMesh(meshes[0].client, 'registerModel', { modelId: 'cold', modelInfo: { type: 'example', path: modelFile('cold', 'cold: '), key: '' } });
    const client = inferenceClientOf(meshes[2]);
    const answering = Promise.all(Array.from({ length: 8 }, (_, i) => infer(client, inferRequest('cold', String(i)))));
    // A load that takes a while is claimed in the registry while it runs, so other instances do not place another.
    const claimedOn = await waitFor('the load of cold claimed in the registry', async () => {
      const modelStatus = await callMesh(meshes[0].client, 'getModelStatus', { modelId: 'cold' });
      return modelStatus.modelCopyInfos.find((c) => c.copyStatus === ModelStatus.LOADING)?.location;
    }, { timeoutMs: 5_000, intervalMs: 20 });
    expect(claimedOn).toBe('mesh-2');
    expect((await answering).map(outputText)).toEqual(Array.from({ length: 8 }, (_, i) => `cold: ${i}`));
    const cold = await callMesh(meshes[0].client, 'getModelStatus', { modelId: 'cold' });
    expect(cold.modelCopyInfos.filter((c) => c.copyStatus === ModelStatus.LOADED).map((c) => c.location)).toEqual(['mesh-2']);
  });
});

describe('scale-out', () => {
  test('a model served above MM_SCALEUP_RPM_THRESHOLD gains a second copy', async () => {
    await loadOn(meshes[0], 'hot', 'hot: ');
    const client = inferenceClientOf(meshes[0]);
    let stop = false;
    // Four callers keep the rate well above the threshold even on a busy machine.
    const load = Promise.all([0, 1, 2, 3].map(async () => {
      while (!stop) await infer(client, inferRequest('hot', 'x'));
    }));
    try {
      const copies = await waitFor('a second loaded copy of hot', async () => {
        const result = await callMesh(meshes[1].client, 'getModelStatus', { modelId: 'hot' });
        const loaded = result.modelCopyInfos.filter((c) => c.copyStatus === ModelStatus.LOADED).map((c) => c.location);
        return loaded.length >= 2 ? loaded : undefined;
      }, { timeoutMs: 30_000, intervalMs: 250 });
      expect(copies).toContain('mesh-0');
    } finally {
      stop = true;
      await load;
    }
  }, 45_000);
});

describe('REST', () => {
  test('a REST inference through the mesh returns what the gRPC call returns', async () => {
    const grpc = await infer(inferenceClientOf(meshes[0]), inferRequest('alias', 'same input'));
    const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], data: ['same input'] }] });
    type RestOutput = { name: string; datatype: string; shape: number[]; data: unknown[] };
    const rest = await new Promise<{ status: number; json: { outputs: RestOutput[] } }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: meshes[0].restPort, method: 'POST', path: '/v2/models/alias/infer', headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(rest.status).toBe(200);
    expect(rest.json.outputs).toEqual(grpc.outputs.map((o) => ({
      name: o.name, datatype: o.datatype, shape: o.shape, data: o.contents!.bytesContents.map((b) => Buffer.from(b).toString()),
    })));
  });
});

describe('bad input', () => {
  test('no model id, both ids, and an unknown model each get their status and an actionable message', async () => {
    const client = inferenceClientOf(meshes[0]);
    await expectStatusError(infer(client, inferRequest('', 'x')), status.INVALID_ARGUMENT, /no model named/);
    await expectStatusError(infer(client, inferRequest('', 'x'), { 'mm-model-id': 'remote', 'mm-vmodel-id': 'alias' }), status.INVALID_ARGUMENT,
      /send only one of mm-model-id, mm-vmodel-id and mm-model-name/);
    await expectStatusError(infer(client, inferRequest('', 'x'), { 'mm-model-id': 'nope' }), status.NOT_FOUND, /model nope not found/);
    await expectStatusError(infer(client, inferRequest('nope', 'x')), status.NOT_FOUND, /model nope not found/);
  });

  test('an oversized message is RESOURCE_EXHAUSTED', async () => {
    const client = inferenceClientOf(meshes[0]);
    await expectStatusError(infer(client, inferRequest('remote', 'x'.repeat(2 * MAX_MESSAGE))), status.RESOURCE_EXHAUSTED, /exceeds the limit/);
  });

  test('a deadline shorter than the load is DEADLINE_EXCEEDED and leaves no call counted in flight', async () => {
    await callMesh(meshes[0].client, 'registerModel', { modelId: 'slow', modelInfo: { type: 'example', path: modelFile('slow', 'slow: '), key: '' } });
    const client = inferenceClientOf(meshes[1]);
    await expectStatusError(infer(client, inferRequest('slow', 'x'), {}, LOAD_DELAY_MS / 4), status.DEADLINE_EXCEEDED, /deadline/i);
    // The load carries on; once it is done the model answers.
    expect(outputText(await infer(client, inferRequest('slow', 'later')))).toBe('slow: later');
    await waitFor('every instance to report no calls in flight', async () => {
      const records = await etcd.getAll().prefix(`${namespace}instances/`).strings();
      return Object.values(records).every((r) => (JSON.parse(r) as { requestsInFlight: number }).requestsInFlight === 0);
    }, { timeoutMs: 15_000, intervalMs: 200 });
  });

  test('garbage bytes on the HTTP/2 port end that connection and the instance keeps serving', async () => {
    const ended = await new Promise<string>((resolve) => {
      const socket = net.connect(meshes[0].grpcPort, '127.0.0.1', () => socket.write(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\xff garbage \x01\x02'.repeat(50))));
      // Read what the server answers (its GOAWAY): a socket that is not read never sees the server's end.
      socket.resume();
      socket.on('error', () => resolve('closed by the server'));
      socket.on('end', () => resolve('closed by the server'));
      socket.on('close', () => resolve('closed by the server'));
      socket.setTimeout(10_000, () => {
        resolve('still open after 10 s');
        socket.destroy();
      });
    });
    expect(ended).toBe('closed by the server');
    expect(outputText(await infer(inferenceClientOf(meshes[0]), inferRequest('remote', 'still here')))).toBe('from mesh-1: still here');
  });
});

describe('failures while requests flow', () => {
  test('kill -9 of the instance holding the only copy: calls entering the survivors all succeed', async () => {
    await loadOn(meshes[2], 'victim-model', 'v: ');
    const survivors = [inferenceClientOf(meshes[0]), inferenceClientOf(meshes[1])];
    let sent = 0;
    const failures: string[] = [];
    let stop = false;
    const worker = async (client: GRPCInferenceServiceClient) => {
      while (!stop) {
        const n = sent++;
        try {
          const answer = outputText(await infer(client, inferRequest('victim-model', String(n)), {}, 20_000));
          if (answer !== `v: ${n}`) failures.push(`wrong answer ${answer}`);
        } catch (err) {
          failures.push(`${(err as ServiceError).code}: ${(err as ServiceError).details}`);
        }
      }
    };
    const workers = [0, 1, 2, 3].map((i) => worker(survivors[i % 2]));
    await waitFor('some calls before the kill', () => sent > 40);
    await meshes[2].process.kill();
    const sentAtKill = sent;
    await waitFor('calls after the kill', () => sent > sentAtKill + 80, { timeoutMs: 30_000 });
    stop = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(120);
  }, 60_000);
});
