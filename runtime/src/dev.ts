import { existsSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { ConfigError, loadConfig } from './config';
import { MeshProcess } from './lifecycle/mesh-process';
import { createLogger } from './log';
import { VERSION } from './version';
import { ModelMeshClient, RegisterModelRequest, SetVModelRequest } from '../../proto/gen/model-mesh';
import { OnnxRuntimeServer, parseOnnxOptions, startOnnxRuntimeServer } from '../servers/onnx';
import { firstSignal } from '../servers/shared/signals';

/**
 * `modelmesh dev`: the whole serving path on one machine with nothing else installed — the embedded store, one mesh,
 * the ONNX runtime and the sample model — and the commands to call it.
 */

export const DEV_USAGE = `Usage: modelmesh dev [options]

Starts, in this one process, a mesh on the embedded store, the ONNX model server and the sample model
(y = x·W + b: input "x" FP32 [n, 4], output "y" [n, 3]) as vmodel "sample", then prints how to call it.

Options:
  --grpc-port <n>   the mesh's gRPC port (default 8033)
  --rest-port <n>   the mesh's KServe v2 REST port (default 8008)
  --help            print this help and exit
`;

const VMODEL = 'sample';
const MODEL = 'sample__dev';

/** The sample model, found beside the sources (runtime/src) or the build (runtime/dist/runtime/src). */
export function sampleModelPath(): string {
  for (const candidate of [join(__dirname, '..', 'models', 'sample', 'model.onnx'), join(__dirname, '..', '..', '..', 'models', 'sample', 'model.onnx')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('the sample model (runtime/models/sample/model.onnx) is missing from this installation');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function portFlag(argv: readonly string[], flag: string, fallback: number): number {
  const i = argv.indexOf(flag);
  if (i < 0) return fallback;
  const value = argv[i + 1];
  if (!value || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new ConfigError(flag, `must be a port number, got "${value ?? ''}"`);
  return Number(value);
}

function call<Req, Res>(method: (req: Req, cb: (err: Error | null, res: Res) => void) => unknown, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => method(request, (err, res) => (err ? reject(err) : resolve(res))));
}

export function howToCall(grpcPort: number, restPort: number): string {
  const body = '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}';
  const grpcBody = '{"model_name":"sample","inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"contents":{"fp32_contents":[1,2,3,4]}}]}';
  return [
    `modelmesh dev ${VERSION}: serving vmodel "${VMODEL}" (y = x·W + b; x FP32 [n, 4] -> y FP32 [n, 3])`,
    '',
    'REST (KServe v2):',
    `  curl -s http://127.0.0.1:${restPort}/v2/models/${VMODEL}/infer -H 'content-type: application/json' -d '${body}'`,
    '  expected output data: [2.25, 13, 4.5]',
    '',
    'gRPC (grpcurl, from the repository root):',
    `  grpcurl -plaintext -import-path proto -proto grpc_predict_v2.proto -d '${grpcBody}' 127.0.0.1:${grpcPort} inference.GRPCInferenceService/ModelInfer`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}

export async function runDev(argv: readonly string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream,
  err: NodeJS.WritableStream): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(DEV_USAGE);
    return 0;
  }
  let grpcPort: number;
  let restPort: number;
  try {
    grpcPort = portFlag(argv, '--grpc-port', 8033);
    restPort = portFlag(argv, '--rest-port', 8008);
  } catch (e) {
    err.write(`modelmesh dev: ${(e as Error).message}\n\n${DEV_USAGE}`);
    return 2;
  }
  const stop = firstSignal(['SIGTERM', 'SIGINT']);
  const log = createLogger('warn', {}, (line) => err.write(line));
  let runtime: OnnxRuntimeServer | undefined;
  let mesh: MeshProcess | undefined;
  try {
    const parsed = parseOnnxOptions(['--port', '0', '--host', '127.0.0.1'], env);
    if (parsed.kind !== 'run') throw new Error('unexpected ONNX runtime options');
    runtime = await startOnnxRuntimeServer(parsed.options, (line) => log.debug(line));
    const config = loadConfig({
      ...env,
      MM_SERVICE_NAME: 'modelmesh-dev',
      KV_STORE: 'embedded',
      MM_INSTANCE_ID: 'dev',
      MM_METRICS: 'disabled',
      MM_SVC_GRPC_PORT: String(grpcPort),
      MM_REST_PORT: String(restPort),
      MM_PROBE_PORT: String(await freePort()),
      MM_PRESTOP_WAIT_PORT: String(await freePort()),
      INTERNAL_GRPC_PORT: String(runtime.port),
      MM_LOG_LEVEL: env.MM_LOG_LEVEL ?? 'warn',
      SHUTDOWN_TIMEOUT_MS: '2000',
    }, VERSION);
    mesh = await MeshProcess.start(config, log);
    const client = new ModelMeshClient(`127.0.0.1:${grpcPort}`, credentials.createInsecure());
    try {
      await call(client.registerModel.bind(client), RegisterModelRequest.fromPartial({
        modelId: MODEL, modelInfo: { type: 'onnx', path: sampleModelPath() }, loadNow: true, sync: true,
      }));
      await call(client.setVModel.bind(client), SetVModelRequest.fromPartial({ vModelId: VMODEL, targetModelId: MODEL }));
    } finally {
      client.close();
    }
    out.write(howToCall(grpcPort, restPort));
    await stop.received;
    return 0;
  } catch (e) {
    err.write(`modelmesh dev: ${(e as Error).message}\n`);
    return 1;
  } finally {
    stop.dispose();
    await mesh?.stop('modelmesh dev stopping');
    await runtime?.stop();
  }
}
