import { status } from '@grpc/grpc-js';
import {
  DeleteVModelRequest, EnsureLoadedRequest, GetVModelStatusRequest, ModelInfo, ModelStatusInfo,
  ModelStatusInfo_ModelStatus as ModelStatus, RegisterModelRequest, SetVModelRequest, VModelStatusInfo,
} from '../../../proto/gen/model-mesh';
import { MeshError, alreadyExists, failedPrecondition, invalidArgument, notFound } from '../errors';
import { Logger } from '../log';
import { Placer } from './placer';
import { loadedCopies, modelStatusInfo, vmodelStatusInfo } from '../registry/model-state';
import { ModelRecord, VModelRecord } from '../registry/records';
import { DELETE, RecordChanges, Registry, UNCHANGED } from '../registry/registry';

/**
 * The semantics of the management API (mmesh.ModelMesh), following upstream ModelMesh: validation, registration,
 * status, loading on demand and vmodel aliases with transitions. Transport-free: the API layer maps MeshError
 * codes to gRPC statuses.
 */

export interface ManagementOptions {
  readonly registry: Registry;
  readonly placer: Placer;
  readonly log: Logger;
  readonly failureExpiryMs: number;
  readonly defaultVModelOwner?: string;
  /** Longest a sync ensureLoaded waits (upstream: five times the runtime's load timeout). */
  readonly syncLoadTimeoutMs: number;
  /** Longest a sync setVModel waits for its transition. */
  readonly syncTransitionTimeoutMs: number;
  readonly now?: () => number;
}

export interface CallContext {
  /** `mm-balanced: true`: the caller spreads requests itself, so this instance may load locally. */
  readonly balanced?: boolean;
}

/** Recently registered models start somewhat old in the cache so one burst of registrations cannot evict hot models. */
const AGE_ON_REGISTER_MS = 60 * 60_000;
const MAX_ID_LENGTH = 1024;

function validateId(value: string, field: string): string {
  if (!value) throw invalidArgument(`${field} must not be empty`);
  if (value.length > MAX_ID_LENGTH) throw invalidArgument(`${field} is ${value.length} characters long; at most ${MAX_ID_LENGTH} are allowed`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalidArgument(`${field} must not contain control characters`);
  return value;
}

/** ModelInfo given with every field empty counts as not given (proto3 cannot tell them apart). */
function presentInfo(info: ModelInfo | undefined): ModelInfo | undefined {
  return info && (info.type || info.path || info.key) ? info : undefined;
}

function validateInfo(info: ModelInfo | undefined, field: string): ModelInfo {
  if (!info) throw invalidArgument(`${field} is required: give the model's type (and its path and key as the runtime needs them)`);
  if (!info.type) throw invalidArgument(`${field}.type must not be empty`);
  return info;
}

const sameInfo = (r: ModelRecord, i: ModelInfo) => r.type === i.type && (r.path ?? '') === (i.path ?? '') && (r.key ?? '') === (i.key ?? '');

/** A setVModel request with its optional fields normalised. */
interface SetVModelDecision {
  readonly owner?: string;
  readonly expected?: string;
  readonly info?: ModelInfo;
  readonly updateOnly: boolean;
  readonly force: boolean;
  readonly autoDeleteTargetModel: boolean;
  readonly loadNow: boolean;
  readonly now: number;
}

/** The models a vmodel holds a reference on. */
const referenced = (vm: VModelRecord | undefined): Set<string> => new Set(vm ? [vm.active, vm.target] : []);

export class Management {
  private readonly now: () => number;

  constructor(private readonly o: ManagementOptions) {
    this.now = o.now ?? Date.now;
  }

  private status(modelId: string): ModelStatusInfo {
    return modelStatusInfo(this.o.registry.models.get(modelId), this.now(), this.o.failureExpiryMs);
  }

  private newRecord(info: ModelInfo, lastUsed: number, autoDelete: boolean, refs = 0): ModelRecord {
    return {
      type: info.type,
      ...(info.path ? { path: info.path } : {}),
      ...(info.key ? { key: info.key } : {}),
      copies: {},
      failures: {},
      refs,
      autoDelete,
      lastUsed,
    };
  }

  private initialLastUsed(requested: number, loadNow: boolean): number {
    const now = this.now();
    if (requested >= now) return now;
    if (requested > 0) return requested;
    return now - (loadNow ? AGE_ON_REGISTER_MS : 6 * AGE_ON_REGISTER_MS);
  }

  async registerModel(req: RegisterModelRequest, ctx: CallContext = {}): Promise<ModelStatusInfo> {
    const modelId = validateId(req.modelId, 'modelId');
    const info = validateInfo(presentInfo(req.modelInfo), 'modelInfo');
    const lastUsed = this.initialLastUsed(req.lastUsedTime, req.loadNow);
    let created = false;
    await this.o.registry.models.update(modelId, (r) => {
      if (!r) {
        created = true;
        return this.newRecord(info, lastUsed, false);
      }
      created = false;
      if (!sameInfo(r, info)) {
        throw alreadyExists(`model ${modelId} already exists with different attribute values `
          + `(registered type "${r.type}", path "${r.path ?? ''}"); unregister it first or use a new id`);
      }
      return !req.loadNow && lastUsed - r.lastUsed > AGE_ON_REGISTER_MS ? { ...r, lastUsed } : UNCHANGED;
    });
    this.o.log.info(created ? 'registered model' : 'model already registered', { modelId, type: info.type });
    if (req.loadNow) return this.ensureLoaded({ modelId, lastUsedTime: lastUsed, sync: req.sync }, ctx);
    return this.status(modelId);
  }

  async unregisterModel(modelId: string): Promise<void> {
    validateId(modelId, 'modelId');
    await this.o.registry.models.update(modelId, (r) => {
      if (!r) return UNCHANGED;
      if (r.refs > 0) {
        throw failedPrecondition(`model ${modelId} is referenced by ${r.refs} vmodel(s); delete them or point them at another model first`);
      }
      return DELETE;
    });
    this.o.log.info('unregistered model', { modelId });
  }

  /** Reads the store, not the local view: a status read right after a write elsewhere must see that write. */
  async getModelStatus(modelId: string): Promise<ModelStatusInfo> {
    validateId(modelId, 'modelId');
    await this.o.registry.models.read(modelId);
    return this.status(modelId);
  }

  async ensureLoaded(req: EnsureLoadedRequest, ctx: CallContext = {}): Promise<ModelStatusInfo> {
    const modelId = validateId(req.modelId, 'modelId');
    const record = this.o.registry.models.get(modelId) ?? (await this.o.registry.models.read(modelId))?.record;
    if (!record) throw notFound(`model ${modelId} is not registered`);
    if (loadedCopies(record).length > 0) return this.status(modelId);
    const placed = await this.o.placer.ensureCopy(modelId, { priority: req.sync ? 'request' : 'background', preferLocal: ctx.balanced === true });
    if (placed.kind === 'none') {
      const current = this.status(modelId);
      return { ...current, status: ModelStatus.LOADING_FAILED, errors: current.errors.length ? current.errors : [placed.reason] };
    }
    if (req.sync) await this.waitForLoadOutcome(modelId, this.now() + this.o.syncLoadTimeoutMs);
    return this.status(modelId);
  }

  /** Waits until the model has a loaded copy, has no copy left (every attempt failed), or is gone. */
  async waitForLoadOutcome(modelId: string, deadline: number): Promise<ModelRecord | undefined> {
    return this.o.registry.models.waitFor(modelId,
      (r) => !r || loadedCopies(r).length > 0 || !this.o.placer.hasCopyUnderWay(modelId, r), deadline,
      `model ${modelId} to finish loading`);
  }

  async setVModel(req: SetVModelRequest, ctx: CallContext = {}): Promise<VModelStatusInfo> {
    const vmodelId = validateId(req.vModelId, 'vModelId');
    const targetId = validateId(req.targetModelId, 'targetModelId');
    const info = presentInfo(req.modelInfo);
    if (info) validateInfo(info, 'modelInfo');
    const owner = req.owner || undefined;
    const expected = req.expectedTargetModelId || undefined;
    const now = this.now();

    for (let attempt = 0; attempt < 10; attempt++) {
      const seen = (await this.o.registry.vmodels.read(vmodelId))?.record;
      const modelIds = [...new Set([targetId, ...referenced(seen)])];
      const outcome = await this.o.registry.updateMany({ models: modelIds, vmodels: [vmodelId] }, (current) => {
        const vm = current.vmodels.get(vmodelId);
        if (vm?.active !== seen?.active || vm?.target !== seen?.target) return { changes: UNCHANGED, result: 'retry' as const };
        const changes = this.decideSetVModel(vmodelId, targetId, vm, current.models, { ...req, owner, expected, info, now });
        return { changes, result: 'done' as const };
      });
      if (outcome === 'done') break;
      if (attempt === 9) throw new MeshError(status.ABORTED, `vmodel ${vmodelId} kept changing under concurrent updates; try again`, true);
    }

    const vm = this.o.registry.vmodels.get(vmodelId);
    if (vm && vm.active === vm.target && (req.loadNow || info)) {
      await this.ensureLoaded({ modelId: vm.target, lastUsedTime: 0, sync: req.sync && Boolean(info) }, ctx);
    } else if (vm && vm.active !== vm.target) {
      if (req.loadNow) await this.o.placer.ensureCopy(vm.target, { priority: 'background', preferLocal: false });
      if (req.sync) {
        await this.o.registry.vmodels.waitFor(vmodelId, (v) => !v || v.active === v.target || v.failed || v.target !== targetId,
          this.now() + this.o.syncTransitionTimeoutMs, `vmodel ${vmodelId} to finish its transition to ${targetId}`);
      }
    }
    return this.getVModelStatus({ vModelId: vmodelId, owner: '' });
  }

  private decideSetVModel(vmodelId: string, targetId: string, vm: VModelRecord | undefined,
    models: ReadonlyMap<string, ModelRecord | undefined>,
    req: SetVModelDecision): RecordChanges | typeof UNCHANGED {
    if (req.expected !== undefined) {
      if (!vm && req.expected !== targetId) throw failedPrecondition(`vmodel ${vmodelId} not found (expectedTargetModelId was ${req.expected})`);
      if (vm && req.owner && vm.owner !== req.owner) throw alreadyExists(`vmodel ${vmodelId} already exists with a different owner than "${req.owner}"`);
      if (vm && vm.target !== req.expected && vm.target !== targetId) {
        throw failedPrecondition(`vmodel ${vmodelId} targets ${vm.target}, not the expected ${req.expected}`);
      }
    }
    if (!vm && req.updateOnly) throw notFound(`vmodel ${vmodelId} not found (updateOnly was set)`);
    if (vm && req.owner && vm.owner !== req.owner) {
      throw alreadyExists(`vmodel ${vmodelId} already exists with owner "${vm.owner ?? ''}"; it can only be changed by that owner`);
    }

    const records = new Map(models);
    let target = records.get(targetId);
    if (req.info) {
      if (target && !sameInfo(target, req.info)) throw alreadyExists(`target model ${targetId} already exists with different attribute values`);
      if (!target) {
        const activeLastUsed = vm ? records.get(vm.active)?.lastUsed ?? 0 : 0;
        const lastUsed = activeLastUsed || req.now - (req.loadNow ? AGE_ON_REGISTER_MS : 6 * AGE_ON_REGISTER_MS);
        target = this.newRecord(req.info, lastUsed, req.autoDeleteTargetModel);
        records.set(targetId, target);
      }
    } else if (!target) {
      throw notFound(`target model ${targetId} not found: register it first or give modelInfo`);
    }

    let next: VModelRecord;
    if (!vm) {
      const owner = req.owner ?? this.o.defaultVModelOwner;
      next = { ...(owner ? { owner } : {}), active: targetId, target: targetId, failed: false };
    } else if (vm.target === targetId && (vm.active === targetId || !req.force)) {
      return UNCHANGED;
    } else {
      const active = records.get(vm.active);
      const activeCopies = active ? loadedCopies(active).length : 0;
      const targetLoaded = loadedCopies(target).length > 0;
      const switchNow = req.force || targetId === vm.active || activeCopies === 0 || (activeCopies === 1 && targetLoaded);
      const { transitionSince: _previous, ...rest } = vm;
      next = switchNow
        ? { ...rest, active: targetId, target: targetId, failed: false }
        : { ...rest, target: targetId, failed: false, transitionSince: req.now };
    }
    return { vmodels: new Map([[vmodelId, next]]), models: this.refChanges(records, referenced(vm), referenced(next)) };
  }

  /** Moves vmodel references from `before` to `after`, deleting auto-delete models nobody references any more. */
  private refChanges(records: ReadonlyMap<string, ModelRecord | undefined>, before: Set<string>,
    after: Set<string>): Map<string, ModelRecord | typeof DELETE> {
    const changes = new Map<string, ModelRecord | typeof DELETE>();
    for (const id of new Set([...before, ...after])) {
      const record = records.get(id);
      if (!record) continue;
      const delta = (after.has(id) ? 1 : 0) - (before.has(id) ? 1 : 0);
      if (delta === 0) continue;
      const refs = Math.max(0, record.refs + delta);
      changes.set(id, refs === 0 && record.autoDelete && !after.has(id) ? DELETE : { ...record, refs });
    }
    return changes;
  }

  /**
   * Completes a transition: the target becomes active, if the vmodel still transitions from `from` to `to`.
   * Used by the leader once the target is ready.
   */
  async completeTransition(vmodelId: string, from: string, to: string): Promise<boolean> {
    return this.o.registry.updateMany({ models: [from, to], vmodels: [vmodelId] }, (current) => {
      const vm = current.vmodels.get(vmodelId);
      if (!vm || vm.active !== from || vm.target !== to) return { changes: UNCHANGED, result: false };
      const { transitionSince: _done, ...rest } = vm;
      const next: VModelRecord = { ...rest, active: to, failed: false };
      const models = this.refChanges(current.models, referenced(vm), referenced(next));
      return { changes: { vmodels: new Map([[vmodelId, next]]), models }, result: true };
    });
  }

  /** Marks (or clears) a transition as failed, if the vmodel still transitions to `to`. */
  async setTransitionFailed(vmodelId: string, to: string, failed: boolean): Promise<void> {
    await this.o.registry.vmodels.update(vmodelId,
      (vm) => (vm && vm.target === to && vm.active !== to && vm.failed !== failed ? { ...vm, failed } : UNCHANGED));
  }

  async deleteVModel(req: DeleteVModelRequest): Promise<void> {
    const vmodelId = validateId(req.vModelId, 'vModelId');
    const owner = req.owner || undefined;
    const seen = (await this.o.registry.vmodels.read(vmodelId))?.record;
    if (!seen) return;
    await this.o.registry.updateMany({ models: [...referenced(seen)], vmodels: [vmodelId] }, (current) => {
      const vm = current.vmodels.get(vmodelId);
      // Upstream leaves a vmodel of another owner in place and reports success.
      if (!vm || (owner && vm.owner !== owner)) return { changes: UNCHANGED, result: undefined };
      if (vm.active !== seen.active || vm.target !== seen.target) throw new MeshError(status.ABORTED, `vmodel ${vmodelId} changed during delete; try again`, true);
      const models = this.refChanges(current.models, referenced(vm), new Set());
      return { changes: { vmodels: new Map([[vmodelId, DELETE]]), models }, result: undefined };
    });
    this.o.log.info('deleted vmodel', { vmodelId });
  }

  async getVModelStatus(req: GetVModelStatusRequest): Promise<VModelStatusInfo> {
    const vmodelId = validateId(req.vModelId, 'vModelId');
    const vm = (await this.o.registry.vmodels.read(vmodelId))?.record;
    if (!vm || (req.owner && vm.owner !== req.owner)) return vmodelStatusInfo(undefined, undefined, undefined);
    await Promise.all([this.o.registry.models.read(vm.active), this.o.registry.models.read(vm.target)]);
    return vmodelStatusInfo(vm, this.status(vm.active), this.status(vm.target));
  }
}
