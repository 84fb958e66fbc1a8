import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig } from './config';
import { MeshProcess } from './lifecycle/mesh-process';
import { createLogger, logProcessWarnings } from './log';
import { VERSION } from './version';

export const SERVE_USAGE = `Usage: modelmesh serve

Runs one mesh instance beside a model server. Configured by environment variables (see the README's
configuration table); MM_SERVICE_NAME and KV_STORE are required.
`;

/** `modelmesh serve`: runs until SIGTERM or SIGINT, then leaves the mesh. Resolves to the exit code. */
export async function runServe(argv: readonly string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream,
  err: NodeJS.WritableStream): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(SERVE_USAGE);
    return 0;
  }
  if (argv.length > 0) {
    err.write(`modelmesh serve: unexpected argument '${argv[0]}' (serve is configured by environment variables)\n\n${SERVE_USAGE}`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(env, VERSION);
  } catch (e) {
    if (e instanceof ConfigError) {
      err.write(`modelmesh serve: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  // The registry is a large, long-lived heap; left to itself V8 lets the old generation reach several times it after
  // a burst of registrations or loads, and keeps those pages. Bounding the growth keeps the footprint near the live
  // data, for more frequent full collections (docs/performance.md has the measurements).
  if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);
  const log = createLogger(config.logLevel, { instance: config.instanceId }, (line) => err.write(line));
  logProcessWarnings(log);
  let mesh: MeshProcess;
  try {
    mesh = await MeshProcess.start(config, log);
  } catch (e) {
    log.error('start-up failed', { err: e as Error });
    return 1;
  }
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      void mesh.stop(`received ${signal}`).then(resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return 0;
}
