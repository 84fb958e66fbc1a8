import { VERSION } from './version';

export const USAGE = `Usage: modelmesh <command> [options]

Commands:
  serve                     run the mesh beside a model server (configured by environment, see README)
  runtime example|onnx      run a built-in model server
  dev                       run a mesh, the ONNX runtime and a sample model locally
  status                    show the state of a running mesh
  models                    register, list and delete models

Options:
  --version                 print the version and exit
  --help                    print this help and exit
`;

/** Built-in model servers of `modelmesh runtime <kind>`; those not built yet say so. */
const RUNTIME_KINDS = ['example', 'onnx'] as const;
const RUNTIMES_NOT_YET_AVAILABLE: ReadonlySet<string> = new Set<string>();

/** Entry point of the `modelmesh` command. Resolves to the process exit code. */
export async function main(argv: readonly string[], out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const [command] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    out.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    out.write(`${VERSION}\n`);
    return 0;
  }
  if (command === 'runtime') return runtime(argv.slice(1), out, err);
  if (command === 'dev') {
    const { runDev } = await import('./dev');
    return runDev(argv.slice(1), process.env, out, err);
  }
  if (command === 'serve') {
    const { runServe } = await import('./serve');
    return runServe(argv.slice(1), process.env, out, err);
  }
  if (command === 'status' || command === 'models') {
    const { runStatus, runModels } = await import('./operator/commands');
    return (command === 'status' ? runStatus : runModels)(argv.slice(1), { out, err });
  }
  err.write(`modelmesh: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

async function runtime(argv: readonly string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const [kind] = argv;
  if (kind === '--help' || kind === '-h') {
    out.write(USAGE);
    return 0;
  }
  if (kind === 'example') {
    // Loaded on demand: other commands need not pay for grpc-js and the generated protos.
    const { runExampleRuntime } = await import('../servers/example');
    return runExampleRuntime(argv.slice(1), { out, err });
  }
  if (kind === 'onnx') {
    // Loaded on demand: onnxruntime's native library is only needed by this command.
    const { runOnnxRuntime } = await import('../servers/onnx');
    return runOnnxRuntime(argv.slice(1), { out, err });
  }
  if (kind !== undefined && RUNTIMES_NOT_YET_AVAILABLE.has(kind)) {
    err.write(`modelmesh: 'runtime ${kind}' is not available in this build (version ${VERSION})\n`);
    return 1;
  }
  const which = kind === undefined ? 'a runtime kind is required' : `unknown runtime '${kind}'`;
  err.write(`modelmesh runtime: ${which}; expected one of: ${RUNTIME_KINDS.join(', ')}\n\n${USAGE}`);
  return 2;
}
