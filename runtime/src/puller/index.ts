/**
 * The storage puller: turns a model's storage path and key into local files under `<rootModelDir>/<modelId>/` before
 * the mesh calls loadModel, with upstream's storage-config format (types s3, gcs, azure, http, pvc).
 */
export { createPuller } from './puller';
export type { Puller, PullerOptions, PullOptions, PullResult } from './puller';
export { PullError } from './errors';
export type { PullFailure } from './errors';
export { parseStorageUri, isStorageUri } from './model-key';
export type { StorageLocation } from './model-key';
