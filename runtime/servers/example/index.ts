import { EXAMPLE_USAGE, ExampleOptionError, parseExampleOptions, ParsedExampleArgs } from './options';
import { ExampleRuntimeServer, startExampleRuntimeServer } from './server';
import { VERSION } from '../../src/version';
import { firstSignal } from '../shared/signals';

export { EXAMPLE_USAGE, parseExampleOptions } from './options';
export type { ExampleRuntimeOptions } from './options';
export { startExampleRuntimeServer } from './server';
export type { ExampleRuntimeServer } from './server';

export interface ExampleRuntimeIo {
  /** Help text goes here. @default process.stdout */
  readonly out?: NodeJS.WritableStream;
  /** Errors and the log (a line as each load starts and ends, one per unload) go here. @default process.stderr */
  readonly err?: NodeJS.WritableStream;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Resolves when the runtime should stop. @default the first SIGTERM or SIGINT */
  readonly stopRequested?: Promise<string>;
}

const PREFIX = 'example-runtime';

/**
 * `modelmesh runtime example …`: validates the flags, serves until asked to stop, shuts down cleanly.
 * Resolves to the exit code: 0 after a clean stop, 2 for bad options, 1 when it cannot start.
 */
export async function runExampleRuntime(argv: readonly string[], io: ExampleRuntimeIo = {}): Promise<number> {
  const out = io.out ?? process.stdout;
  const err = io.err ?? process.stderr;
  const log = (line: string) => { err.write(`${PREFIX}: ${line}\n`); };

  let parsed: ParsedExampleArgs;
  try {
    parsed = parseExampleOptions(argv, io.env ?? process.env);
  } catch (e) {
    if (!(e instanceof ExampleOptionError)) throw e;
    err.write(`modelmesh runtime example: ${e.message}\n`);
    return 2;
  }
  if (parsed.kind === 'help') {
    out.write(EXAMPLE_USAGE);
    return 0;
  }
  const options = parsed.options;

  // Listen for signals before binding, so a stop requested during start-up is not lost.
  const stop = io.stopRequested ? { received: io.stopRequested, dispose: () => undefined } : firstSignal(['SIGTERM', 'SIGINT']);
  let server: ExampleRuntimeServer;
  try {
    server = await startExampleRuntimeServer(options, log);
  } catch (e) {
    stop.dispose();
    log(e instanceof Error ? e.message : String(e));
    return 1;
  }
  log(`serving mmesh.ModelRuntime, inference.GRPCInferenceService and modelmesh.example.ExampleStream on ${server.where} `
    + `(version ${VERSION}; capacity ${options.capacityBytes} bytes, model size ${options.modelSizeBytes ?? 'from file'}, `
    + `load delay ${options.loadDelayMs} ms, max loading concurrency ${options.maxLoadingConcurrency})`);

  const reason = await stop.received;
  log(`${reason}: shutting down`);
  await server.stop();
  log('stopped');
  return 0;
}
