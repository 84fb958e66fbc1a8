import { cp, realpath, symlink } from 'node:fs/promises';
import { PullError, storageFailure } from '../errors';
import { isInside, joinInside } from '../paths';
import { type StorageProvider, stringField } from './types';

/**
 * `type: pvc` — a model on a PersistentVolumeClaim mounted at `<pvcMountsDir>/<name>/`. Upstream links the model
 * folder to the mounted path; `pvcMode: 'copy'` copies it instead (for runtimes that must not follow links).
 * The resolved path (links included) must stay inside the claim's mount.
 */
export const pvcProvider: StorageProvider = async (ctx, targets) => {
  const name = stringField(ctx, 'name', true) as string;
  if (name.includes('/') || name.includes('\\') || name.includes('\0') || name === '.' || name === '..') {
    throw new PullError('invalid-request', `storage key '${ctx.storageKey}': PVC name '${name.replace(/\0/g, '\\0')}' is not a claim name`, ctx.storageKey);
  }
  const mount = joinInside(ctx.settings.pvcMountsDir, name);
  const mountReal = await realpath(mount).catch((err: unknown) => {
    throw storageFailure(err, ctx.storageKey, `pvc://${name}/ (mounted at ${mount})`, ctx.secrets);
  });
  for (const target of targets) {
    const object = `pvc://${name}/${target.remotePath.replace(/^\/+/, '')}`;
    // Upstream joins the path to the mount, so a leading '/' is relative to the claim, not the filesystem root.
    const source = joinInside(mount, target.remotePath.replace(/^\/+/, ''));
    const real = await realpath(source).catch((err: unknown) => {
      throw storageFailure(err, ctx.storageKey, object, ctx.secrets);
    });
    if (!isInside(mountReal, real)) {
      throw new PullError('invalid-request', `storage key '${ctx.storageKey}': ${object}: resolves outside the claim's mount`, ctx.storageKey, object);
    }
    try {
      if (ctx.settings.pvcMode === 'copy') await cp(real, ctx.staging.path(target.localName), { recursive: true });
      else await symlink(real, ctx.staging.path(target.localName));
    } catch (err) {
      throw storageFailure(err, ctx.storageKey, object, ctx.secrets);
    }
  }
};
