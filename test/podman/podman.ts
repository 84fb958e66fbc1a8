import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * Podman on this kind of machine, as `scripts/build-image.sh` sets it up: rootful, runc (crun fails in this VM), the
 * vfs storage driver, lower default ulimits. The script writes that configuration to CONF_DIR; every podman command
 * here uses it.
 */

const run = promisify(execFile);
const REPO = resolve(__dirname, '..', '..');
const CONF_DIR = '/var/tmp/cdk8s-modelmesh-podman';
export const PODMAN_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  CONTAINERS_CONF: join(CONF_DIR, 'containers.conf'),
  CONTAINERS_STORAGE_CONF: join(CONF_DIR, 'storage.conf'),
};
const IMAGE_LABEL = 'io.cdk8s-modelmesh.source-digest';

const onPath = (program: string) => (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, program)));

/** Why the podman tier cannot run here, or undefined when it can. */
export function podmanUnavailable(): string | undefined {
  if (process.env.MM_PODMAN === 'skip') return 'MM_PODMAN=skip';
  if (process.platform !== 'linux') return `podman tier runs on Linux, this is ${process.platform}`;
  if (!onPath('podman') || !onPath('runc')) return 'podman and runc are not installed (.ci/run installs them: apt-get install podman runc debootstrap)';
  if (process.getuid?.() !== 0) return 'podman runs rootful here (rootless needs subuid ranges and fuse, which this VM lacks): run as root';
  return undefined;
}

/** Runs podman and returns its stdout; a failure carries podman's stderr. */
export async function podman(args: readonly string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await run('podman', [...args], {
      env: PODMAN_ENV, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, cwd: options.cwd ?? tmpdir(),
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`podman ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/**
 * Builds the runtime image with `scripts/build-image.sh` unless the image is already built from the checkout as it
 * is (the script's IF_CHANGED mode compares a digest of the build context). Returns the script's output.
 */
export function ensureRuntimeImage(timeoutMs: number): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn('bash', [join(REPO, 'scripts', 'build-image.sh')], {
      env: { ...process.env, IF_CHANGED: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) done(output);
      else fail(new Error(`scripts/build-image.sh ${signal ? `was stopped (${signal}) after ${timeoutMs} ms` : `exited ${code}`}:\n${output}`));
    });
  });
}

/** The shared libraries a dynamically linked program loads, as ldd lists them. */
async function linkedLibraries(program: string): Promise<string[]> {
  const { stdout } = await run('ldd', [program]).catch(() => ({ stdout: '' }));
  return [...stdout.matchAll(/(\/\S+)/g)].map((m) => m[1]);
}

/** Modes in the etcd image's rootfs (part of its digest): mkdtemp makes the root 0700, the pod's user must pass. */
const ETCD_ROOTFS_MODES = 'find . -type d -exec chmod 0755 {} + && chmod 0755 usr/local/bin/etcd && chmod 1777 tmp';

/**
 * Tags an image holding this machine's etcd (Debian's etcd-server) as `tag`, the etcd image the constructs name:
 * the binary at /usr/local/bin/etcd, where the constructs' command expects it, with the libraries it links. Rebuilt
 * only when the binary changed.
 */
export async function ensureEtcdImage(tag: string): Promise<void> {
  const { stdout } = await run('sh', ['-c', 'command -v etcd']);
  const etcd = realpathSync(stdout.trim());
  const digest = createHash('sha256').update(readFileSync(etcd)).update(ETCD_ROOTFS_MODES).digest('hex');
  const existing = await podman(['image', 'inspect', '--format', `{{index .Labels "${IMAGE_LABEL}"}}`, tag]).catch(() => '');
  if (existing.trim() === digest) return;
  const previous = (await podman(['image', 'inspect', '--format', '{{.Id}}', tag]).catch(() => '')).trim();
  const rootfs = mkdtempSync(join(tmpdir(), 'mm-etcd-rootfs-'));
  try {
    const place = (from: string, to: string) => {
      mkdirSync(join(rootfs, dirname(to)), { recursive: true });
      copyFileSync(realpathSync(from), join(rootfs, to));
    };
    place(etcd, '/usr/local/bin/etcd');
    for (const lib of await linkedLibraries(etcd)) place(lib, lib);
    mkdirSync(join(rootfs, 'tmp'));
    await run('sh', ['-c', `${ETCD_ROOTFS_MODES} && tar -cf image.tar --exclude=image.tar .`], { cwd: rootfs });
    await podman(['import', '--change', 'ENTRYPOINT ["/usr/local/bin/etcd"]', '--change', `LABEL ${IMAGE_LABEL}=${digest}`,
      '--message', `Debian's etcd (${etcd}) for the podman tier`, join(rootfs, 'image.tar'), tag]);
    // The image the tag named before is untagged now: remove it unless a container still uses it.
    if (previous) await podman(['rmi', previous]).catch(() => undefined);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}
