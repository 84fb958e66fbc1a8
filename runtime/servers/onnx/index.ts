import { ONNX_USAGE, OnnxOptionError, parseOnnxOptions, ParsedOnnxArgs } from './options';
import { OnnxRuntimeServer, startOnnxRuntimeServer } from './server';
import { VERSION } from '../../src/version';
import { firstSignal } from '../shared/signals';

export { ONNX_USAGE, parseOnnxOptions } from './options';
export type { OnnxRuntimeOptions } from './options';
export { startOnnxRuntimeServer } from './server';
export type { OnnxRuntimeServer } from './server';

export interface OnnxRuntimeIo {
  /** Help text goes here. @default process.stdout */
  readonly out?: NodeJS.WritableStream;
  /** Errors and the log (loads, unloads, purges) go here. @default process.stderr */
  readonly err?: NodeJS.WritableStream;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Resolves when the runtime should stop. @default the first SIGTERM or SIGINT */
  readonly stopRequested?: Promise<string>;
}

const PREFIX = 'onnx-runtime';

/**
 * `modelmesh runtime onnx …`: validates the flags and environment, serves until asked to stop, shuts down cleanly.
 * Resolves to the exit code: 0 after a clean stop, 2 for bad options, 1 when it cannot start.
 */
export async function runOnnxRuntime(argv: readonly string[], io: OnnxRuntimeIo = {}): Promise<number> {
  const out = io.out ?? process.stdout;
  const err = io.err ?? process.stderr;
  const log = (line: string) => { err.write(`${PREFIX}: ${line}\n`); };

  let parsed: ParsedOnnxArgs;
  try {
    parsed = parseOnnxOptions(argv, io.env ?? process.env);
  } catch (e) {
    if (!(e instanceof OnnxOptionError)) throw e;
    err.write(`modelmesh runtime onnx: ${e.message}\n`);
    return 2;
  }
  if (parsed.kind === 'help') {
    out.write(ONNX_USAGE);
    return 0;
  }
  const options = parsed.options;

  // Listen for signals before binding, so a stop requested during start-up is not lost.
  const stop = io.stopRequested ? { received: io.stopRequested, dispose: () => undefined } : firstSignal(['SIGTERM', 'SIGINT']);
  let server: OnnxRuntimeServer;
  try {
    server = await startOnnxRuntimeServer(options, log);
  } catch (e) {
    stop.dispose();
    log(e instanceof Error ? e.message : String(e));
    return 1;
  }
  log(`capacity ${options.capacityBytes} bytes, from ${options.capacitySource}`);
  log(`serving mmesh.ModelRuntime and inference.GRPCInferenceService on ${server.where} (version ${VERSION}; `
    + `default model size ${options.defaultModelSizeBytes}, size multiplier ${options.modelSizeMultiplier}, `
    + `max loading concurrency ${options.maxLoadingConcurrency}, load timeout ${options.loadTimeoutMs} ms`
    + `${options.modelRoot ? `, relative paths from ${options.modelRoot}` : ''})`);

  const reason = await stop.received;
  log(`${reason}: shutting down`);
  await server.stop();
  log('stopped');
  return 0;
}
