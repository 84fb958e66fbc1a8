import { Ports, RuntimeEnv } from '../../../lib/contract';
import { readFlags, SOCKET_USAGE, socketPathOption, UINT32_MAX, wholeNumber } from '../shared/option-values';

/** Settings of `modelmesh runtime example`, validated once at start-up and frozen. */
export interface ExampleRuntimeOptions {
  /** Address the gRPC server binds. @default 127.0.0.1 */
  readonly host: string;
  /** Port of the one gRPC server (SPI and data plane); 0 asks the kernel for a free one. @default 8085 */
  readonly port: number;
  /** Unix socket to listen on instead of host:port (the mesh's `INTERNAL_GRPC_SOCKET_PATH`). @default none */
  readonly socketPath?: string;
  /** `capacityInBytes` reported to the mesh. @default 256 MiB */
  readonly capacityBytes: number;
  /** Size reported for every model; undefined means "the model file's size". */
  readonly modelSizeBytes?: number;
  /** `defaultModelSizeInBytes` reported to the mesh. @default --model-size, else 1 MiB */
  readonly defaultModelSizeBytes: number;
  /** Extra time every load takes, to make loads observable. @default 0 */
  readonly loadDelayMs: number;
  /** Loads running at once; more wait in a FIFO queue. @default 4 */
  readonly maxLoadingConcurrency: number;
  /** `modelLoadingTimeoutMs` reported to the mesh. @default 30000 */
  readonly loadTimeoutMs: number;
  /** Loads of model paths containing this text fail on this runtime only. @default none */
  readonly failPath?: string;
  /** Per-model concurrency limit reported to the mesh (limitModelConcurrency); undefined means no limit. */
  readonly modelConcurrency?: number;
  /** Extra time every ModelInfer takes, to make concurrency observable. @default 0 */
  readonly inferDelayMs: number;
}

export type ParsedExampleArgs =
  | { readonly kind: 'help' }
  | { readonly kind: 'run'; readonly options: ExampleRuntimeOptions };

/** A bad flag or environment value; the message names it and says what was expected. */
export class ExampleOptionError extends Error {
  constructor(public readonly option: string, message: string) {
    super(message);
    this.name = 'ExampleOptionError';
  }
}

const MIB = 1024 * 1024;
export const DEFAULT_CAPACITY_BYTES = 256 * MIB;
export const DEFAULT_MODEL_SIZE_BYTES = MIB;
export const DEFAULT_MAX_LOADING_CONCURRENCY = 4;
export const DEFAULT_LOAD_TIMEOUT_MS = 30_000;
export const DEFAULT_HOST = '127.0.0.1';

export const EXAMPLE_USAGE = `Usage: modelmesh runtime example [options]

Serves mmesh.ModelRuntime, inference.GRPCInferenceService and modelmesh.example.ExampleStream on one port.
A model (type "example") is a file; its text T is the model. ModelInfer answers T + input, Echo answers T + text.

Options:
  --port <n>                     listening port (env ${RuntimeEnv.PORT}; default ${Ports.RUNTIME_SPI}; 0 picks a free port)
  --host <address>               listening address (default ${DEFAULT_HOST})
${SOCKET_USAGE}  --capacity <bytes>             capacity reported to the mesh (default ${DEFAULT_CAPACITY_BYTES})
  --model-size <bytes>           size reported for every model (default: the model file's size)
  --default-model-size <bytes>   default model size reported to the mesh (default: --model-size, else ${DEFAULT_MODEL_SIZE_BYTES})
  --load-delay-ms <n>            extra time each load takes (default 0)
  --max-loading-concurrency <n>  loads running at once; more are queued (default ${DEFAULT_MAX_LOADING_CONCURRENCY})
  --load-timeout-ms <n>          model loading timeout reported to the mesh (default ${DEFAULT_LOAD_TIMEOUT_MS})
  --fail-path <text>             also fail loads of model paths containing <text> (this runtime only)
  --model-concurrency <n>        ask the mesh to send each model at most <n> calls at once (default: no limit)
  --infer-delay-ms <n>           extra time each ModelInfer takes (default 0)
  --help                         print this help and exit
`;

type FlagName = 'port' | 'socket' | 'host' | 'capacity' | 'model-size' | 'default-model-size' | 'load-delay-ms'
  | 'max-loading-concurrency' | 'load-timeout-ms' | 'fail-path' | 'model-concurrency' | 'infer-delay-ms';
const FLAGS: ReadonlySet<FlagName> = new Set<FlagName>(['port', 'socket', 'host', 'capacity', 'model-size', 'default-model-size',
  'load-delay-ms', 'max-loading-concurrency', 'load-timeout-ms', 'fail-path', 'model-concurrency', 'infer-delay-ms']);

/**
 * Turns the arguments after `runtime example` (and the environment) into validated options. Pure: throws
 * ExampleOptionError naming the flag or variable for any bad value, unknown flag or missing value.
 */
export function parseExampleOptions(argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {}): ParsedExampleArgs {
  const flags = readFlags(argv, FLAGS, (option, message) => new ExampleOptionError(option, message));
  if (flags.help) return { kind: 'help' };
  const given = flags.given;

  const flagPort = given.get('port');
  const envPort = env[RuntimeEnv.PORT];
  let port: number = Ports.RUNTIME_SPI;
  if (flagPort !== undefined) {
    port = portNumber('--port', flagPort);
  } else if (envPort !== undefined && envPort !== '') {
    port = portNumber(RuntimeEnv.PORT, envPort);
  }

  const host = given.get('host') ?? DEFAULT_HOST;
  if (host.trim() === '') throw new ExampleOptionError('--host', '--host must be an address such as 127.0.0.1 or 0.0.0.0, got ""');
  const socketPath = socketPathOption(given, (option, message) => new ExampleOptionError(option, message));

  const capacityBytes = optionalInteger(given, 'capacity', 1, Number.MAX_SAFE_INTEGER, 'a whole number of bytes greater than 0')
    ?? DEFAULT_CAPACITY_BYTES;
  const modelSizeBytes = optionalInteger(given, 'model-size', 1, Number.MAX_SAFE_INTEGER, 'a whole number of bytes greater than 0');
  const defaultModelSizeBytes = optionalInteger(given, 'default-model-size', 1, Number.MAX_SAFE_INTEGER,
    'a whole number of bytes greater than 0') ?? modelSizeBytes ?? DEFAULT_MODEL_SIZE_BYTES;
  const loadDelayMs = optionalInteger(given, 'load-delay-ms', 0, UINT32_MAX, 'a whole number of milliseconds (0 or more)') ?? 0;
  const maxLoadingConcurrency = optionalInteger(given, 'max-loading-concurrency', 1, UINT32_MAX, 'a whole number, 1 or more')
    ?? DEFAULT_MAX_LOADING_CONCURRENCY;
  // The mesh rejects a runtime that reports a loading timeout below 100 ms, so refuse it here first.
  const loadTimeoutMs = optionalInteger(given, 'load-timeout-ms', 100, UINT32_MAX, 'a whole number of milliseconds, 100 or more')
    ?? DEFAULT_LOAD_TIMEOUT_MS;

  const modelConcurrency = optionalInteger(given, 'model-concurrency', 1, UINT32_MAX, 'a whole number, 1 or more');
  const inferDelayMs = optionalInteger(given, 'infer-delay-ms', 0, UINT32_MAX, 'a whole number of milliseconds (0 or more)') ?? 0;
  const failPath = given.get('fail-path');
  if (failPath !== undefined && failPath === '') throw new ExampleOptionError('--fail-path', '--fail-path must not be empty');

  if (defaultModelSizeBytes > capacityBytes) {
    const source = given.has('default-model-size') ? '--default-model-size' : given.has('model-size') ? '--model-size' : 'the default model size';
    throw new ExampleOptionError('--capacity',
      `--capacity (${capacityBytes}) must be at least ${source} (${defaultModelSizeBytes}), or no model would ever fit`);
  }

  const options: ExampleRuntimeOptions = {
    host,
    port,
    capacityBytes,
    defaultModelSizeBytes,
    loadDelayMs,
    maxLoadingConcurrency,
    loadTimeoutMs,
    ...(socketPath === undefined ? {} : { socketPath }),
    ...(modelSizeBytes === undefined ? {} : { modelSizeBytes }),
    ...(failPath === undefined ? {} : { failPath }),
    ...(modelConcurrency === undefined ? {} : { modelConcurrency }),
    inferDelayMs,
  };
  return { kind: 'run', options: Object.freeze(options) };
}

function portNumber(name: string, text: string): number {
  const n = wholeNumber(text);
  if (n === undefined || n > 65_535) throw new ExampleOptionError(name, `${name} must be a port number (0-65535), got "${text}"`);
  return n;
}

function optionalInteger(given: ReadonlyMap<FlagName, string>, flag: FlagName, min: number, max: number,
  expected: string): number | undefined {
  const text = given.get(flag);
  if (text === undefined) return undefined;
  const n = wholeNumber(text);
  if (n === undefined || n < min || n > max) throw new ExampleOptionError(`--${flag}`, `--${flag} must be ${expected}, got "${text}"`);
  return n;
}
