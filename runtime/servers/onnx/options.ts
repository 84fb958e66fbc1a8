import { Ports, RuntimeEnv } from '../../../lib/contract';
import { readFlags, SOCKET_USAGE, socketPathOption, UINT32_MAX, wholeNumber } from '../shared/option-values';

/** Settings of `modelmesh runtime onnx`, validated once at start-up and frozen. */
export interface OnnxRuntimeOptions {
  /** Address the gRPC server binds. @default 127.0.0.1 */
  readonly host: string;
  /** Port of the one gRPC server (SPI and data plane); 0 asks the kernel for a free one. @default 8085 */
  readonly port: number;
  /** Unix socket to listen on instead of host:port (the mesh's `INTERNAL_GRPC_SOCKET_PATH`). @default none */
  readonly socketPath?: string;
  /** `capacityInBytes` reported to the mesh. @default CONTAINER_MEM_REQ_BYTES − MEM_BUFFER_BYTES, else 512 MiB */
  readonly capacityBytes: number;
  /** Where `capacityBytes` came from, for the start-up log. */
  readonly capacitySource: string;
  /** `defaultModelSizeInBytes` reported to the mesh, and the size predicted when a model's size is unknown. @default 1000000 */
  readonly defaultModelSizeBytes: number;
  /** A model's size is its size on disk times this. @default 1.25 */
  readonly modelSizeMultiplier: number;
  /** Loads running at once; more wait in a FIFO queue. @default 2 */
  readonly maxLoadingConcurrency: number;
  /** `modelLoadingTimeoutMs` reported to the mesh; a load taking longer fails. @default 30000 */
  readonly loadTimeoutMs: number;
  /** Relative model paths are resolved against this folder (ROOT_MODEL_DIR); absent: the working directory. */
  readonly modelRoot?: string;
}

export type ParsedOnnxArgs =
  | { readonly kind: 'help' }
  | { readonly kind: 'run'; readonly options: OnnxRuntimeOptions };

/** A bad flag or environment value; the message names it and says what was expected. */
export class OnnxOptionError extends Error {
  constructor(public readonly option: string, message: string) {
    super(message);
    this.name = 'OnnxOptionError';
  }
}

const MIB = 1024 * 1024;
/** Capacity when neither --capacity nor CONTAINER_MEM_REQ_BYTES says (a laptop, `modelmesh dev`). */
export const DEFAULT_CAPACITY_BYTES = 512 * MIB;
/** Upstream's adapters' defaults (modelmesh-runtime-adapter). */
export const DEFAULT_MEM_BUFFER_BYTES = 256 * MIB;
export const DEFAULT_MODEL_SIZE_BYTES = 1_000_000;
export const DEFAULT_MODEL_SIZE_MULTIPLIER = 1.25;
export const DEFAULT_LOAD_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_LOADING_CONCURRENCY = 2;
export const DEFAULT_HOST = '127.0.0.1';
/** The mesh counts a runtime's default model size as at least this (its size unit). */
const MESH_MIN_MODEL_SIZE = 8192;

export const ONNX_USAGE = `Usage: modelmesh runtime onnx [options]

Serves mmesh.ModelRuntime and inference.GRPCInferenceService (KServe v2) for ONNX models on one port, with
onnxruntime (CPU). Model types accepted: onnx, mt:onnx[:<version>], rt:<runtime> (optionally with |pv:<protocol>).
A model path is an .onnx file, or a folder holding model.onnx.

Options (flags win over environment variables):
  --port <n>                     listening port (env ${RuntimeEnv.PORT}; default ${Ports.RUNTIME_SPI}; 0 picks a free port)
  --host <address>               listening address (default ${DEFAULT_HOST})
${SOCKET_USAGE}  --capacity <bytes>             capacity reported to the mesh (default: ${RuntimeEnv.CONTAINER_MEM_REQ_BYTES} minus
                                 ${RuntimeEnv.MEM_BUFFER_BYTES} (default ${DEFAULT_MEM_BUFFER_BYTES}), else ${DEFAULT_CAPACITY_BYTES})
  --default-model-size <bytes>   default model size reported to the mesh (env ${RuntimeEnv.DEFAULT_MODELSIZE}; default ${DEFAULT_MODEL_SIZE_BYTES})
  --model-size-multiplier <x>    model size = size on disk × x (env ${RuntimeEnv.MODELSIZE_MULTIPLIER}; default ${DEFAULT_MODEL_SIZE_MULTIPLIER})
  --max-loading-concurrency <n>  loads running at once; more are queued (env ${RuntimeEnv.LOADING_CONCURRENCY}; default ${DEFAULT_MAX_LOADING_CONCURRENCY})
  --load-timeout-ms <n>          a load taking longer fails; reported to the mesh (env ${RuntimeEnv.LOADTIME_TIMEOUT}; default ${DEFAULT_LOAD_TIMEOUT_MS})
  --help                         print this help and exit

Relative model paths are resolved against ${RuntimeEnv.ROOT_MODEL_DIR} when it is set.
`;

type FlagName = 'port' | 'socket' | 'host' | 'capacity' | 'default-model-size' | 'model-size-multiplier' | 'max-loading-concurrency' | 'load-timeout-ms';
const FLAGS: ReadonlySet<FlagName> = new Set<FlagName>(['port', 'socket', 'host', 'capacity', 'default-model-size', 'model-size-multiplier',
  'max-loading-concurrency', 'load-timeout-ms']);

type Env = Readonly<Record<string, string | undefined>>;

/** A setting given by a flag or, failing that, by an environment variable; the name is what errors cite. */
interface Given { readonly name: string; readonly text: string }

function flagOrEnv(given: ReadonlyMap<FlagName, string>, flag: FlagName, env: Env, variable?: string): Given | undefined {
  const text = given.get(flag);
  if (text !== undefined) return { name: `--${flag}`, text };
  const envText = variable === undefined ? undefined : env[variable];
  // An empty variable counts as unset, as a Kubernetes env entry without a value renders.
  return variable !== undefined && envText !== undefined && envText !== '' ? { name: variable, text: envText } : undefined;
}

function integer(setting: Given | undefined, min: number, max: number, expected: string): number | undefined {
  if (setting === undefined) return undefined;
  const n = wholeNumber(setting.text);
  if (n === undefined || n < min || n > max) throw new OnnxOptionError(setting.name, `${setting.name} must be ${expected}, got "${setting.text}"`);
  return n;
}

/**
 * Turns the arguments after `runtime onnx` (and the environment) into validated options. Pure: throws
 * OnnxOptionError naming the flag or variable for any bad value, unknown flag or missing value.
 */
export function parseOnnxOptions(argv: readonly string[], env: Env = {}): ParsedOnnxArgs {
  const flags = readFlags(argv, FLAGS, (option, message) => new OnnxOptionError(option, message));
  if (flags.help) return { kind: 'help' };
  const given = flags.given;

  const port = integer(flagOrEnv(given, 'port', env, RuntimeEnv.PORT), 0, 65_535, 'a port number (0-65535)') ?? Ports.RUNTIME_SPI;
  const host = given.get('host') ?? DEFAULT_HOST;
  if (host.trim() === '') throw new OnnxOptionError('--host', '--host must be an address such as 127.0.0.1 or 0.0.0.0, got ""');
  const socketPath = socketPathOption(given, (option, message) => new OnnxOptionError(option, message));

  const defaultModelSizeBytes = integer(flagOrEnv(given, 'default-model-size', env, RuntimeEnv.DEFAULT_MODELSIZE), 1,
    Number.MAX_SAFE_INTEGER, 'a whole number of bytes greater than 0') ?? DEFAULT_MODEL_SIZE_BYTES;
  const maxLoadingConcurrency = integer(flagOrEnv(given, 'max-loading-concurrency', env, RuntimeEnv.LOADING_CONCURRENCY), 1,
    UINT32_MAX, 'a whole number, 1 or more') ?? DEFAULT_MAX_LOADING_CONCURRENCY;
  // The mesh rejects a runtime that reports a loading timeout below 100 ms, so refuse it here first.
  const loadTimeoutMs = integer(flagOrEnv(given, 'load-timeout-ms', env, RuntimeEnv.LOADTIME_TIMEOUT), 100, UINT32_MAX,
    'a whole number of milliseconds, 100 or more') ?? DEFAULT_LOAD_TIMEOUT_MS;
  const modelSizeMultiplier = multiplier(flagOrEnv(given, 'model-size-multiplier', env, RuntimeEnv.MODELSIZE_MULTIPLIER));
  const { capacityBytes, capacitySource, capacityName } = capacity(given, env);

  // Upstream ModelMesh (and our mesh) refuse a runtime whose capacity is below this; say so at start-up instead.
  const unit = Math.max(MESH_MIN_MODEL_SIZE, defaultModelSizeBytes);
  const minimum = Math.max(2 * unit, Math.min(512 * MIB, 10 * unit));
  if (capacityBytes < minimum) {
    throw new OnnxOptionError(capacityName, `the capacity from ${capacitySource} is ${capacityBytes} bytes; the mesh needs at least `
      + `${minimum} bytes for a default model size of ${defaultModelSizeBytes}`);
  }

  const modelRoot = env[RuntimeEnv.ROOT_MODEL_DIR];
  const options: OnnxRuntimeOptions = {
    host,
    port,
    capacityBytes,
    capacitySource,
    defaultModelSizeBytes,
    modelSizeMultiplier,
    maxLoadingConcurrency,
    loadTimeoutMs,
    ...(socketPath === undefined ? {} : { socketPath }),
    ...(modelRoot ? { modelRoot } : {}),
  };
  return { kind: 'run', options: Object.freeze(options) };
}

/** --capacity, else CONTAINER_MEM_REQ_BYTES − MEM_BUFFER_BYTES as upstream's adapters compute it, else the default. */
function capacity(given: ReadonlyMap<FlagName, string>, env: Env): { capacityBytes: number; capacitySource: string; capacityName: string } {
  const flag = integer(flagOrEnv(given, 'capacity', env), 1, Number.MAX_SAFE_INTEGER, 'a whole number of bytes greater than 0');
  if (flag !== undefined) return { capacityBytes: flag, capacitySource: '--capacity', capacityName: '--capacity' };

  const memRequest = env[RuntimeEnv.CONTAINER_MEM_REQ_BYTES];
  if (memRequest === undefined || memRequest === '') {
    return {
      capacityBytes: DEFAULT_CAPACITY_BYTES,
      capacitySource: `the default (neither --capacity nor ${RuntimeEnv.CONTAINER_MEM_REQ_BYTES} is set)`,
      capacityName: '--capacity',
    };
  }
  const request = integer({ name: RuntimeEnv.CONTAINER_MEM_REQ_BYTES, text: memRequest }, 1, Number.MAX_SAFE_INTEGER,
    'a whole number of bytes (the container\'s memory request)')!;
  const bufferText = env[RuntimeEnv.MEM_BUFFER_BYTES];
  const buffer = bufferText === undefined || bufferText === ''
    ? DEFAULT_MEM_BUFFER_BYTES
    : integer({ name: RuntimeEnv.MEM_BUFFER_BYTES, text: bufferText }, 0, Number.MAX_SAFE_INTEGER, 'a whole number of bytes')!;
  const source = `${RuntimeEnv.CONTAINER_MEM_REQ_BYTES} (${request}) − ${RuntimeEnv.MEM_BUFFER_BYTES} (${buffer})`;
  if (request <= buffer) {
    throw new OnnxOptionError(RuntimeEnv.CONTAINER_MEM_REQ_BYTES, `${RuntimeEnv.CONTAINER_MEM_REQ_BYTES} (${request}) must be greater than `
      + `${RuntimeEnv.MEM_BUFFER_BYTES} (${buffer}), or no memory is left for models; raise the container's memory request`);
  }
  return { capacityBytes: request - buffer, capacitySource: source, capacityName: RuntimeEnv.CONTAINER_MEM_REQ_BYTES };
}

/** A decimal such as 1.25: digits, optionally a point and more digits; above 0, at most 100. */
function multiplier(setting: Given | undefined): number {
  if (setting === undefined) return DEFAULT_MODEL_SIZE_MULTIPLIER;
  const n = /^\d+(\.\d+)?$/.test(setting.text) ? Number(setting.text) : NaN;
  if (!(n > 0 && n <= 100)) {
    throw new OnnxOptionError(setting.name, `${setting.name} must be a decimal number above 0 and at most 100, such as 1.25, got "${setting.text}"`);
  }
  return n;
}
