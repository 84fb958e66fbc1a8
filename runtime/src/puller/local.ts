import { createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { joinInside } from './paths';

/**
 * A pull's private folder inside the model's folder. Providers write only here; `commit` moves the finished entries
 * into place with renames, and `discard` deletes everything, so a failed or cancelled pull leaves no partial file.
 */
export class Staging {
  static async create(modelDir: string): Promise<Staging> {
    const existed = await stat(modelDir).then((s) => s.isDirectory(), () => false);
    await mkdir(modelDir, { recursive: true });
    const dir = await mkdtemp(join(modelDir, '.pulling-'));
    return new Staging(modelDir, dir, !existed);
  }

  private constructor(
    /** `<rootModelDir>/<modelId>` */
    readonly modelDir: string,
    /** `<modelDir>/.pulling-XXXXXX` */
    readonly dir: string,
    private readonly createdModelDir: boolean,
  ) {}

  /** The staging path of a relative path (refusing anything that would leave the staging folder). */
  path(relativePath: string): string {
    return joinInside(this.dir, relativePath);
  }

  /** Writes a stream to a staging file, creating parent folders. */
  async write(relativePath: string, body: Readable | NodeJS.ReadableStream, signal?: AbortSignal): Promise<number> {
    const file = this.path(relativePath);
    await mkdir(dirname(file), { recursive: true });
    const out = createWriteStream(file, { flags: 'wx' });
    await pipeline(body, out, { signal });
    return out.bytesWritten;
  }

  /** Creates the staging folder for a folder target, so an all-empty prefix still yields a folder. */
  async mkdir(relativePath: string): Promise<void> {
    await mkdir(this.path(relativePath), { recursive: true });
  }

  /** Moves each named top-level entry from staging into the model folder, replacing an earlier pull's copy. */
  async commit(names: readonly string[]): Promise<void> {
    for (const name of names) {
      const from = this.path(name);
      const to = joinInside(this.modelDir, name);
      await rm(to, { recursive: true, force: true });
      await rename(from, to);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Deletes the staging folder, and the model folder too when this pull created it. */
  async discard(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    if (this.createdModelDir) {
      // Only an empty folder is removed: a concurrent writer's files (there should be none) are never deleted here.
      await rmdir(this.modelDir).catch(() => undefined);
    }
  }
}

/**
 * Bytes on disk below `path`, following symbolic links (a PVC model is a link to the mounted volume, and upstream
 * reports the size of what it points at). Each real folder is counted once, so a link cycle cannot loop.
 */
export async function diskSize(path: string, seen = new Set<string>()): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.isFile() ? info.size : 0;
  const id = `${info.dev}:${info.ino}`;
  if (seen.has(id)) return 0;
  seen.add(id);
  let total = 0;
  for (const name of await readdir(path)) total += await diskSize(join(path, name), seen);
  return total;
}

/** Whether something (a file, folder or link, even a dangling one) exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}
