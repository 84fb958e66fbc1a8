import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../../runtime/src/log';
import { type Puller, type PullerOptions, type PullFailure, PullError, createPuller } from '../../../runtime/src/puller';

/** A puller over fresh temporary folders: storage-config, the model root and the PVC mounts. */
export interface PullerFixture {
  readonly puller: Puller;
  readonly storageConfigDir: string;
  readonly rootModelDir: string;
  readonly pvcMountsDir: string;
  /** Writes one storage-config entry, as the secret mount shows it: a file named after the key. */
  setKey(key: string, entry: Record<string, unknown>): void;
  /** A puller with other options over the same folders. */
  withOptions(options: Partial<PullerOptions>): Puller;
  /** Everything below the model root (relative paths, sorted). */
  listRoot(): string[];
  read(path: string): string;
  cleanup(): void;
}

export function pullerFixture(options: Partial<PullerOptions> = {}): PullerFixture {
  const base = mkdtempSync(join(tmpdir(), 'mm-puller-'));
  const storageConfigDir = join(base, 'storage-config');
  const rootModelDir = join(base, 'models');
  const pvcMountsDir = join(base, 'pvc_mounts');
  for (const dir of [storageConfigDir, rootModelDir, pvcMountsDir]) mkdirSync(dir);
  const make = (extra: Partial<PullerOptions>) => createPuller({
    storageConfigDir, rootModelDir, pvcMountsDir, log: createLogger('silent'), attempts: 1, ...options, ...extra,
  });
  const walk = (dir: string, prefix = ''): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    return e.isDirectory() ? [rel, ...walk(join(dir, e.name), rel)] : [rel];
  }).sort();
  return {
    puller: make({}),
    storageConfigDir,
    rootModelDir,
    pvcMountsDir,
    setKey: (key, entry) => writeFileSync(join(storageConfigDir, key), JSON.stringify(entry)),
    withOptions: make,
    listRoot: () => walk(rootModelDir),
    read: (path) => readFileSync(join(rootModelDir, path), 'utf8'),
    cleanup: () => rmSync(base, { recursive: true, force: true }),
  };
}

/**
 * Awaits a failing pull and checks it: a PullError with `reason`, a message containing each of `includes` and none of
 * `secrets` (credentials must never reach a message).
 */
export async function expectPullError(promise: Promise<unknown>, reason: PullFailure, includes: readonly string[],
  secrets: readonly string[] = []): Promise<PullError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof PullError)) throw new Error(`expected a PullError (${reason}), got ${err === undefined ? 'success' : String(err)}`);
  expect({ reason: err.reason, message: err.message }).toEqual({ reason, message: expect.any(String) });
  if (process.env.MM_PULLER_SHOW_ERRORS) process.stderr.write(`[${err.reason}] ${err.message}\n`);
  for (const text of includes) expect(err.message).toContain(text);
  for (const secret of secrets) {
    expect(err.message).not.toContain(secret);
    expect(JSON.stringify({ ...err, stack: err.stack })).not.toContain(secret);
  }
  return err;
}
