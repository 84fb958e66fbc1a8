import { FailureRecord, ModelRecord, VModelRecord } from './records';
import {
  ModelStatusInfo, ModelStatusInfo_ModelCopyInfo, ModelStatusInfo_ModelStatus as ModelStatus, VModelStatusInfo,
  VModelStatusInfo_VModelStatus as VModelStatus,
} from '../../../proto/gen/model-mesh';

/** Pure readings of records: what state a model is in, its live failures, and the API's status messages. */

/** Failures younger than the expiry; older ones no longer exclude an instance or make a model LOADING_FAILED. */
export function activeFailures(record: ModelRecord, now: number, expiryMs: number): Array<[string, FailureRecord]> {
  return Object.entries(record.failures).filter(([, f]) => now - f.time < expiryMs);
}

export function loadedCopies(record: ModelRecord): string[] {
  return Object.entries(record.copies).filter(([, c]) => c.state === 'loaded').map(([id]) => id);
}

/** Mesh-wide counts: registered models, those with a loaded copy, and those with a live load failure. */
export function modelCounts(records: Iterable<ModelRecord>, now: number, expiryMs: number): { managed: number; loaded: number; withFailure: number } {
  let managed = 0;
  let loaded = 0;
  let withFailure = 0;
  for (const record of records) {
    managed++;
    if (loadedCopies(record).length > 0) loaded++;
    if (activeFailures(record, now, expiryMs).length > 0) withFailure++;
  }
  return { managed, loaded, withFailure };
}

export function hasAnyCopy(record: ModelRecord): boolean {
  for (const _ in record.copies) return true;
  return false;
}

/** The model's overall status: any loaded copy wins, then loading, then live failures. */
export function modelStatus(record: ModelRecord | undefined, now: number, expiryMs: number): ModelStatus {
  if (!record) return ModelStatus.NOT_FOUND;
  let loading = false;
  for (const copy of Object.values(record.copies)) {
    if (copy.state === 'loaded') return ModelStatus.LOADED;
    loading = true;
  }
  if (loading) return ModelStatus.LOADING;
  return activeFailures(record, now, expiryMs).length > 0 ? ModelStatus.LOADING_FAILED : ModelStatus.NOT_LOADED;
}

/** The management API's ModelStatusInfo for a record: status, live failure messages and per-copy detail, newest first. */
export function modelStatusInfo(record: ModelRecord | undefined, now: number, expiryMs: number): ModelStatusInfo {
  const status = modelStatus(record, now, expiryMs);
  if (!record) return { status, errors: [], modelCopyInfos: [] };
  const failures = activeFailures(record, now, expiryMs).sort(([, a], [, b]) => b.time - a.time);
  const copies: ModelStatusInfo_ModelCopyInfo[] = [
    ...Object.entries(record.copies).map(([location, c]) => ({
      location, copyStatus: c.state === 'loaded' ? ModelStatus.LOADED : ModelStatus.LOADING, time: c.since,
    })),
    ...failures.map(([location, f]) => ({ location, copyStatus: ModelStatus.LOADING_FAILED, time: f.time })),
  ].sort((a, b) => b.time - a.time);
  return {
    status,
    errors: status === ModelStatus.LOADED ? [] : failures.map(([instance, f]) => `${f.message} (on instance ${instance})`),
    modelCopyInfos: copies,
  };
}

export function vmodelStatusInfo(vmodel: VModelRecord | undefined, active: ModelStatusInfo | undefined,
  target: ModelStatusInfo | undefined): VModelStatusInfo {
  if (!vmodel) {
    return { status: VModelStatus.NOT_FOUND, activeModelId: '', targetModelId: '', activeModelStatus: undefined, targetModelStatus: undefined, owner: '' };
  }
  const transitioning = vmodel.active !== vmodel.target;
  let status = VModelStatus.DEFINED;
  if (transitioning) status = vmodel.failed ? VModelStatus.TRANSITION_FAILED : VModelStatus.TRANSITIONING;
  return {
    status,
    activeModelId: vmodel.active,
    targetModelId: vmodel.target,
    activeModelStatus: active,
    targetModelStatus: transitioning ? target : undefined,
    owner: vmodel.owner ?? '',
  };
}
