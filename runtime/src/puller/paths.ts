import { isAbsolute, relative, resolve, sep } from 'node:path';
import { PullError } from './errors';

/** Longest file name most filesystems accept. */
const MAX_NAME_BYTES = 255;

/** A name for a message: NUL made visible, very long names shortened. */
const show = (s: string) => {
  const visible = s.replace(/\0/g, '\\0');
  return visible.length > 80 ? `${visible.slice(0, 80)}…` : visible;
};

/**
 * A model id names one folder directly below rootModelDir, so it must be one plain file name: no separators, no
 * `.`/`..`, no NUL or control characters, at most 255 bytes. Anything else is refused rather than rewritten, so two ids
 * can never share a folder and `remove` can never reach outside its own.
 */
export function checkModelId(modelId: string): void {
  const bad = !modelId || modelId === '.' || modelId === '..' || /[/\\]/.test(modelId)
    // eslint-disable-next-line no-control-regex
    || /[\u0000-\u001f\u007f]/.test(modelId) || Buffer.byteLength(modelId) > MAX_NAME_BYTES;
  if (bad) {
    throw new PullError('invalid-request',
      `model id '${show(modelId)}' cannot name a local model folder (it must be one file name: no '/', '\\', '..', control characters, at most ${MAX_NAME_BYTES} bytes)`);
  }
}

/**
 * A path inside a storage (object key, PVC path, URL path). `..` segments and NUL are refused for every type: an
 * object key with `..` would map outside its folder locally, and on a PVC or URL it would climb out of the root.
 */
export function checkRemotePath(path: string, what: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) throw new PullError('invalid-request', `${what} '${show(path)}' contains control characters`);
  if (path.split(/[/\\]/).includes('..')) throw new PullError('invalid-request', `${what} '${path}' contains '..'`);
}

/**
 * The local name of a pulled path, as upstream names it: the last element of the path, or `_model` when the path is
 * empty or only slashes.
 */
export function localNameOf(remotePath: string): string {
  const parts = remotePath.split('/').filter((p) => p !== '' && p !== '.');
  return parts.length ? parts[parts.length - 1] : '_model';
}

/**
 * The local relative path of an object found under a prefix: its key after the prefix, with empty segments dropped.
 * `.` and `..` segments are refused (an object named `models/../../x` must not land outside the model folder).
 */
export function relativeObjectPath(rest: string, objectKey: string): string {
  const parts = rest.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '.' || p === '..' || p.includes('\0') || p.includes('\\'))) {
    throw new PullError('invalid-request', `object '${show(objectKey)}' has a name that cannot be stored locally`);
  }
  return parts.join('/');
}

/** Whether `child` is `parent` or lies below it (both resolved). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(resolve(parent), resolve(child));
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** `parent/child`, refusing a result outside `parent`. */
export function joinInside(parent: string, child: string): string {
  const full = resolve(parent, child);
  if (!isInside(parent, full)) throw new PullError('invalid-request', `path '${show(child)}' escapes '${parent}'`);
  return full;
}
