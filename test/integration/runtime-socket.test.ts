import { lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferenceClient, inferModel } from '../harness/inference';
import { callMesh, spawnModelmesh, startMesh } from '../harness/modelmesh';
import { ManagedProcess, ProcessGroup } from '../harness/processes';
import { StopWaiting, waitFor } from '../harness/wait';

/**
 * The SPI over a Unix socket (`INTERNAL_GRPC_SOCKET_PATH`): whoever can connect to it can load and unload models, so
 * the built-in model servers create it owner-only (0600) in a folder they create 0700, replace a socket left by a
 * previous run, and refuse to remove anything else. A mesh serves inference through it.
 */

const group = new ProcessGroup();
const closers: Array<{ close(): void }> = [];
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mm-socket-'));
});

afterAll(async () => {
  for (const c of closers) c.close();
  await group.stopAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts `modelmesh runtime <kind> --socket <path>` and waits until the socket is there. */
async function startOnSocket(kind: 'example' | 'onnx', name: string, path: string): Promise<ManagedProcess> {
  const proc = spawnModelmesh(group, name, ['runtime', kind, '--socket', path]);
  await waitFor(`${name} listening on ${path}`, () => {
    if (!proc.running) throw new StopWaiting(`${name} exited early:\n${proc.log}`);
    return lstatSync(path, { throwIfNoEntry: false })?.isSocket() === true && proc.log.includes(`on socket ${path}`);
  }, { timeoutMs: 60_000, intervalMs: 100 });
  return proc;
}

/** The permission bits of a file's mode. */
const permissions = (path: string) => statSync(path).mode % 0o1000;

test('the example runtime creates its socket 0600 in a new 0700 folder, and a mesh serves inference through it', async () => {
  const socket = join(dir, 'example', 'run', 'spi.sock');
  const runtime = await startOnSocket('example', 'example on socket', socket);
  // The test runs with the usual umask (022): without the server's care the socket would be 0755 and the folders 0755.
  expect(permissions(socket)).toBe(0o600);
  expect(permissions(join(dir, 'example', 'run'))).toBe(0o700);
  expect(permissions(join(dir, 'example'))).toBe(0o700);

  const mesh = await startMesh(group, {
    instanceId: 'socket-1', runtimePort: 0, kvStore: 'embedded', env: { INTERNAL_GRPC_PORT: '', INTERNAL_GRPC_SOCKET_PATH: socket },
  });
  closers.push(mesh.client);
  const model = join(dir, 'model.txt');
  writeFileSync(model, 'over a socket:');
  await callMesh(mesh.client, 'registerModel', { modelId: 'm', modelInfo: { type: 'example', path: model, key: '' }, loadNow: true, sync: true });
  const grpc = inferenceClient(mesh.grpcPort);
  closers.push(grpc);
  expect(await inferModel(grpc, 'm', ' hi')).toBe('over a socket: hi');

  // A container restart finds its old socket in the shared folder: the new server replaces it, still owner-only.
  await runtime.kill();
  expect(lstatSync(socket).isSocket()).toBe(true);
  await startOnSocket('example', 'example restarted', socket);
  expect(permissions(socket)).toBe(0o600);
}, 120_000);

test('the ONNX runtime creates its socket 0600 too', async () => {
  const socket = join(dir, 'onnx', 'spi.sock');
  await startOnSocket('onnx', 'onnx on socket', socket);
  expect(permissions(socket)).toBe(0o600);
  expect(permissions(join(dir, 'onnx'))).toBe(0o700);
}, 90_000);

test('an existing folder is used as it is, and a file that is not a socket is never removed', async () => {
  const shared = join(dir, 'shared');
  mkdirSync(shared, { mode: 0o750 });
  const path = join(shared, 'not-a-socket');
  writeFileSync(path, 'keep me');
  const proc = spawnModelmesh(group, 'example on a file', ['runtime', 'example', '--socket', path]);
  expect(await proc.waitForExit()).toBe(1);
  expect(proc.log).toContain(`cannot listen on socket ${path}: a file that is not a socket is in the way`);
  expect(lstatSync(path).isFile()).toBe(true);
  expect(permissions(shared)).toBe(0o750);
}, 60_000);
