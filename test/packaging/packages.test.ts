import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { parseAllDocuments } from 'yaml';
import { ModelInferRequest } from '../../proto/gen/grpc_predict_v2';
import { ModelMeshClient, ModelStatusInfo_ModelStatus as ModelStatus } from '../../proto/gen/model-mesh';
import { infer, inferenceClient } from '../harness/inference';
import { callMesh } from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ManagedProcess, ProcessGroup } from '../harness/processes';
import { StopWaiting, httpGet, waitFor, waitForTcpPort } from '../harness/wait';

/**
 * Packaging check of both npm packages, as a user gets them: build, `npm pack`, install each tarball into an empty
 * folder outside the repository and use it from there. It proves that `files`, `main`, `bin` and the dependency lists
 * in .projenrc.ts are right:
 * - the construct library (`cdk8s-modelmesh`) installs without etcd, gRPC, onnxruntime or a cloud SDK in its tree and
 *   synthesizes a chart with a mesh, the ONNX runtime and a model;
 * - the runtime (`cdk8s-modelmesh-runtime`) installs with production dependencies only, and its `modelmesh` command
 *   runs the ONNX model server and the mesh from there and answers an inference on the sample model it ships.
 * The installs use the npm registry through ~/.npm's cache (--prefer-offline).
 */

const REPO = resolve(__dirname, '..', '..');
const run = promisify(execFile);

/** Modules that must stay out of the construct library's tree: the runtime's weight (design §3). */
const RUNTIME_ONLY = [/^etcd3$/, /^@grpc\//, /^onnxruntime-/, /^@aws-sdk\//, /^@azure\//, /^@google-cloud\//];

/** The parent's environment without npm's per-invocation settings (`npm test` exports npm_config_local_prefix etc.,
 * which would point a nested npm at this repository). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== 'NODE_PATH' && key !== 'NODE_OPTIONS' && !key.startsWith('TS_NODE_')) env[key] = value;
  }
  return { ...env, ...extra };
}

async function sh(command: string, args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, env: cleanEnv(env), maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

interface Packed { readonly tarball: string; readonly files: readonly string[]; readonly version: string }

/** `npm pack` of the package in `dir` into `dest`. */
async function pack(dir: string, dest: string): Promise<Packed> {
  const out = await sh('npm', ['pack', '--json', '--pack-destination', dest], dir);
  // npm may print notices before the JSON array.
  const [result] = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; version: string; files: Array<{ path: string }> }>;
  return { tarball: join(dest, result.filename), files: result.files.map((f) => f.path).sort(), version: result.version };
}

/** An empty npm project in a new folder under `base`. */
function emptyProject(base: string, name: string): string {
  const dir = join(base, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `packaging-check-${name}`, version: '0.0.0', private: true }));
  return dir;
}

/** Every package installed anywhere under `nodeModules` (nested copies included), as `name` or `@scope/name`. */
function installedPackages(nodeModules: string): Set<string> {
  const found = new Set<string>();
  const visit = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      if (entry.name.startsWith('@')) {
        for (const scoped of readdirSync(join(dir, entry.name), { withFileTypes: true })) {
          if (!scoped.isDirectory()) continue;
          found.add(`${entry.name}/${scoped.name}`);
          visit(join(dir, entry.name, scoped.name, 'node_modules'));
        }
      } else {
        found.add(entry.name);
        visit(join(dir, entry.name, 'node_modules'));
      }
    }
  };
  visit(nodeModules);
  return found;
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : jsFiles(path);
    return entry.name.endsWith('.js') ? [path] : [];
  });
}

const BUILTINS = new Set(builtinModules);

/**
 * What the installed package's compiled JavaScript requires and cannot get: relative paths missing from the
 * tarball, and packages that are neither Node built-ins nor declared dependencies. Static, so it also covers code
 * the run below does not reach (the storage puller's SDKs, the operator commands).
 */
function unresolvedRequires(packageDir: string): string[] {
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const declared = new Set(Object.keys(manifest.dependencies ?? {}));
  const problems: string[] = [];
  for (const file of jsFiles(packageDir)) {
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)) {
      const spec = match[1];
      const where = relative(packageDir, file);
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        const ok = [target, `${target}.js`, `${target}.json`, join(target, 'index.js')].some((p) => existsSync(p) && statSync(p).isFile());
        if (!ok) problems.push(`${where}: require("${spec}") is not in the package`);
      } else if (!spec.startsWith('node:') && !BUILTINS.has(spec)) {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!declared.has(name)) problems.push(`${where}: require("${spec}") but "${name}" is not a dependency`);
      }
    }
  }
  return problems;
}

let work: string;
let library: Packed;
let runtime: Packed;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'mm-packaging-'));
  // Both packages, as `npm run compile` builds them (tsc --build for lib/ → build/, then runtime/ → runtime/dist/).
  await sh('npm', ['run', '--silent', 'compile'], REPO);
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  library = await pack(REPO, tarballs);
  runtime = await pack(join(REPO, 'runtime'), tarballs);
}, 240_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('both packages are released at one version', () => {
  expect(runtime.version).toBe(library.version);
});

describe('the construct library (cdk8s-modelmesh)', () => {
  let project: string;

  beforeAll(async () => {
    project = emptyProject(work, 'library');
    await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', library.tarball], project);
  }, 180_000);

  test('its tarball holds the compiled library and nothing else', () => {
    const unexpected = library.files.filter((f) => !/^build\/.+\.(js|d\.ts)$/.test(f) && !['package.json', 'README.md', 'LICENSE'].includes(f));
    expect(unexpected).toEqual([]);
    expect(library.files).toEqual(expect.arrayContaining(['build/index.js', 'build/index.d.ts', 'build/contract.js']));
  });

  test('installs without etcd, gRPC, onnxruntime or a cloud SDK in its tree', () => {
    const installed = installedPackages(join(project, 'node_modules'));
    expect([...installed].filter((name) => RUNTIME_ONLY.some((pattern) => pattern.test(name)))).toEqual([]);
    for (const name of ['cdk8s-modelmesh', 'cdk8s', 'cdk8s-plus-28', 'constructs']) expect(installed.has(name)).toBe(true);
    expect(unresolvedRequires(join(project, 'node_modules', 'cdk8s-modelmesh'))).toEqual([]);
  });

  test('synthesizes a chart with a mesh, the ONNX runtime and a model', async () => {
    writeFileSync(join(project, 'synth.js'), [
      "const { App, Chart } = require('cdk8s');",
      "const { EtcdConnection, ModelMesh, Runtimes } = require('cdk8s-modelmesh');",
      "const app = new App({ outdir: 'out' });",
      "const chart = new Chart(app, 'platform', { namespace: 'modelmesh' });",
      "const mesh = new ModelMesh(chart, 'mesh', { etcd: EtcdConnection.cluster({ replicas: 1 }) });",
      'mesh.addRuntime(Runtimes.onnx());',
      "mesh.addModel('sample', { format: { name: 'onnx' }, path: 'sample/model.onnx' });",
      'app.synth();',
      '',
    ].join('\n'));
    await sh(process.execPath, ['synth.js'], project);
    const out = join(project, 'out');
    const objects = readdirSync(out).filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => parseAllDocuments(readFileSync(join(out, f), 'utf8')).map((doc) => doc.toJS() as {
        kind: string; metadata: { name: string }; spec?: { template?: { spec?: { containers?: Array<{ name: string; image: string }> } } };
      }));
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of ['Deployment', 'Service', 'StatefulSet', 'ConfigMap', 'ServingRuntime']) expect(kinds).toContain(kind);
    // The declared model is in the catalog ConfigMap the mesh's leader reconciles.
    expect(JSON.stringify(objects.filter((o) => o.kind === 'ConfigMap'))).toContain('sample/model.onnx');
    // The mesh container runs this project's image at the released version.
    const images = objects.filter((o) => o.kind === 'Deployment')
      .flatMap((o) => o.spec?.template?.spec?.containers ?? []).map((c) => c.image);
    expect(images).toContain(`ghcr.io/cdk8s-modelmesh/modelmesh:${library.version}`);
  });
});

describe('the runtime (cdk8s-modelmesh-runtime)', () => {
  const group = new ProcessGroup();
  let project: string;
  let packageDir: string;
  let bin: string;

  beforeAll(async () => {
    project = emptyProject(work, 'runtime');
    // onnxruntime-node ships its CPU binaries in the package; its install script would only fetch CUDA files.
    await sh('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', runtime.tarball], project,
      { ONNXRUNTIME_NODE_INSTALL: 'skip' });
    packageDir = join(project, 'node_modules', 'cdk8s-modelmesh-runtime');
    bin = join(project, 'node_modules', '.bin', 'modelmesh');
  }, 180_000);

  afterAll(async () => {
    await group.stopAll();
  });

  test('its tarball holds the command, the compiled runtime with the shared contract, and the sample model', () => {
    expect(runtime.files).toEqual(expect.arrayContaining([
      'bin/modelmesh.js', 'dist/runtime/src/cli.js', 'dist/lib/contract.js', 'dist/proto/gen/model-mesh.js', 'models/sample/model.onnx',
    ]));
    expect(runtime.files.filter((f) => f.endsWith('.ts') || f.endsWith('.tsbuildinfo'))).toEqual([]);
    expect(unresolvedRequires(packageDir)).toEqual([]);
  });

  test('`modelmesh --version` runs from the install and prints the package version', async () => {
    expect((await sh(bin, ['--version'], project)).trim()).toBe(runtime.version);
  });

  test('`modelmesh runtime onnx` and `modelmesh serve` from the install serve the shipped sample model', async () => {
    const started = (proc: ManagedProcess) => {
      if (!proc.running) throw new StopWaiting(`${proc.name} exited early:\n${proc.log}`);
    };
    const env = cleanEnv() as Record<string, string>;
    const spawn = (name: string, args: readonly string[], extra: Record<string, string> = {}) =>
      group.spawn(bin, args, { name, cwd: project, env: { ...env, ...extra } });

    const runtimePort = await freePort();
    const onnx = spawn('onnx runtime (installed)', ['runtime', 'onnx', '--port', String(runtimePort)]);
    await waitFor(`the installed ONNX runtime listening on ${runtimePort}`, async () => {
      started(onnx);
      return waitForTcpPort(runtimePort, '127.0.0.1', { timeoutMs: 200 });
    }, { timeoutMs: 60_000 });

    const [grpcPort, restPort, probePort, prestopPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const mesh = spawn('mesh (installed)', ['serve'], {
      MM_SERVICE_NAME: 'packaging-check',
      KV_STORE: 'embedded',
      MM_SVC_GRPC_PORT: String(grpcPort),
      MM_REST_PORT: String(restPort),
      MM_PROBE_PORT: String(probePort),
      MM_PRESTOP_WAIT_PORT: String(prestopPort),
      INTERNAL_GRPC_PORT: String(runtimePort),
      MM_METRICS: 'disabled',
      SHUTDOWN_TIMEOUT_MS: '2000',
    });
    await waitFor(`the installed mesh ready on ${probePort}`, async () => {
      started(mesh);
      started(onnx);
      return (await httpGet(`http://127.0.0.1:${probePort}/ready`)).status === 200;
    }, { timeoutMs: 60_000, intervalMs: 100 });

    const client = new ModelMeshClient(`127.0.0.1:${grpcPort}`, credentials.createInsecure());
    const inference = inferenceClient(grpcPort);
    try {
      const sample = join(packageDir, 'models', 'sample', 'model.onnx');
      expect(existsSync(sample)).toBe(true);
      const status = await callMesh(client, 'registerModel', {
        modelId: 'sample-packaged', modelInfo: { type: 'onnx', path: sample, key: '' }, loadNow: true, sync: true,
      });
      expect(status.status).toBe(ModelStatus.LOADED);
      const request = ModelInferRequest.fromPartial({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32Contents: [1, 2, 3, 4] } }],
      });
      const response = await infer(inference, request, { 'mm-model-id': 'sample-packaged' }, 60_000);
      const y = response.outputs[0].contents!.fp32Contents;
      expect(y).toHaveLength(3);
      [2.25, 13, 4.5].forEach((expected, i) => expect(y[i]).toBeCloseTo(expected, 5));
    } finally {
      inference.close();
      client.close();
      await group.stopAll();
    }
    expect(mesh.log).not.toMatch(/Cannot find module/);
  }, 150_000);
});
