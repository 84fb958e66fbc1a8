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

/** Commands planned by the design but not built yet; they fail with a clear message instead of pretending. */
const NOT_YET_AVAILABLE = new Set(['serve', 'runtime', 'dev', 'status', 'models']);

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
  if (NOT_YET_AVAILABLE.has(command)) {
    err.write(`modelmesh: '${command}' is not available in this build (version ${VERSION})\n`);
    return 1;
  }
  err.write(`modelmesh: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}
