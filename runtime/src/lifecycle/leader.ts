import { Cluster } from '../cluster/cluster';
import { forEachLimit, forEachSliced } from '../concurrency';
import { Logger } from '../log';
import { Management } from '../mesh/management';
import { Placer } from '../mesh/placer';
import { activeFailures, hasAnyCopy, loadedCopies } from '../registry/model-state';
import { Registry, UNCHANGED } from '../registry/registry';

/**
 * Duties of the one instance elected leader: removing the copies of instances that vanished, and driving vmodel
 * transitions (load the target to the active model's scale, then switch; mark failures). Every duty is
 * idempotent, so a leader change mid-way only repeats work.
 */

/** Record updates in flight at once when cleaning up after a departed instance. */
const REAP_CONCURRENCY = 32;

export interface LeaderDutiesOptions {
  readonly registry: Registry;
  readonly cluster: Cluster;
  readonly placer: Placer;
  readonly management: Management;
  readonly log: Logger;
  readonly failureExpiryMs: number;
  /** How long a transition waits for the target to reach the active model's copy count before switching with fewer. */
  readonly transitionScaleTimeoutMs: number;
  /** Copies claimed on an instance that is not a member are removed once they are older than this. */
  readonly orphanGraceMs: number;
  /** Period of the full sweep. */
  readonly sweepIntervalMs: number;
  readonly now?: () => number;
}

export class LeaderDuties {
  private active = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly pendingTransitions = new Set<string>();
  private transitionTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: LeaderDutiesOptions) {
    this.now = o.now ?? Date.now;
    o.registry.vmodels.onChange((id, vm) => {
      if (vm && vm.active !== vm.target) this.scheduleTransition(id);
    });
    o.registry.models.onChange((modelId) => {
      if (!this.active) return;
      for (const [id, vm] of o.registry.vmodels.entries()) {
        if (vm.active !== vm.target && (vm.target === modelId || vm.active === modelId)) this.scheduleTransition(id);
      }
    });
  }

  get isActive(): boolean {
    return this.active;
  }

  /** This instance became leader. */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.o.log.info('became leader');
    this.sweepTimer = setInterval(() => void this.sweep(), this.o.sweepIntervalMs);
    this.sweepTimer.unref();
    void this.sweep();
    // Claims younger than the grace period are spared by the first sweep; look again once they are old enough.
    setTimeout(() => void this.sweep(), this.o.orphanGraceMs + 100).unref();
  }

  /** Leadership ended (lost or resigned). */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.sweepTimer);
    clearTimeout(this.transitionTimer);
    this.o.log.info('no longer leader');
  }

  /** An instance's record disappeared: its copies go from every model record. */
  async instanceGone(instanceId: string): Promise<void> {
    if (!this.active) return;
    const affected = [...this.o.registry.models.entries()].filter(([, r]) => r.copies[instanceId]).map(([id]) => id);
    await forEachLimit(affected, REAP_CONCURRENCY, (modelId) => this.removeCopy(modelId, instanceId));
    this.o.log.info('removed copies of departed instance', { instanceId, copies: affected.length });
  }

  private async removeCopy(modelId: string, instanceId: string): Promise<void> {
    try {
      await this.o.registry.models.update(modelId, (r) => {
        if (!r?.copies[instanceId]) return UNCHANGED;
        const { [instanceId]: _gone, ...copies } = r.copies;
        return { ...r, copies };
      });
    } catch (err) {
      this.o.log.warn('could not remove copy of departed instance', { modelId, instanceId, err: err as Error });
    }
  }

  /** The periodic check: orphaned copies, and every transition in progress. */
  async sweep(): Promise<void> {
    if (!this.active) return;
    const live = this.o.cluster.live();
    const now = this.now();
    const orphans: Array<[string, string]> = [];
    await forEachSliced(this.o.registry.models.entries(), ([modelId, record]) => {
      for (const instanceId in record.copies) {
        if (!live.has(instanceId) && now - record.copies[instanceId].since > this.o.orphanGraceMs) orphans.push([modelId, instanceId]);
      }
    });
    if (!this.active) return;
    await forEachLimit(orphans, REAP_CONCURRENCY, ([modelId, instanceId]) => this.removeCopy(modelId, instanceId));
    for (const [id, vm] of this.o.registry.vmodels.entries()) if (vm.active !== vm.target) this.scheduleTransition(id);
  }

  private scheduleTransition(vmodelId: string): void {
    if (!this.active) return;
    this.pendingTransitions.add(vmodelId);
    if (this.transitionTimer) return;
    // Coalesce bursts of record changes into one pass.
    this.transitionTimer = setTimeout(() => {
      this.transitionTimer = undefined;
      const ids = [...this.pendingTransitions];
      this.pendingTransitions.clear();
      void Promise.all(ids.map((id) => this.advanceTransition(id).catch((err: Error) => this.o.log.warn('vmodel transition step failed', { vmodelId: id, err }))));
    }, 20);
    this.transitionTimer.unref();
  }

  /** One step of a vmodel transition. */
  async advanceTransition(vmodelId: string): Promise<void> {
    if (!this.active) return;
    const vm = this.o.registry.vmodels.get(vmodelId);
    if (!vm || vm.active === vm.target) return;
    const { registry, management, placer, log } = this.o;
    const target = registry.models.get(vm.target);
    const active = registry.models.get(vm.active);
    const now = this.now();
    if (!target) {
      await management.setTransitionFailed(vmodelId, vm.target, true);
      return;
    }
    const activeCopies = active ? loadedCopies(active).length : 0;
    const targetLoaded = loadedCopies(target).length;
    const wanted = Math.max(1, activeCopies);
    const waitedTooLong = now - (vm.transitionSince ?? now) > this.o.transitionScaleTimeoutMs;
    if (activeCopies === 0 || targetLoaded >= wanted || (targetLoaded > 0 && waitedTooLong)) {
      if (await management.completeTransition(vmodelId, vm.active, vm.target)) {
        log.info('vmodel switched to its target', { vmodelId, from: vm.active, to: vm.target, targetCopies: targetLoaded, activeCopies });
      }
      return;
    }
    const failures = activeFailures(target, now, this.o.failureExpiryMs);
    if (!hasAnyCopy(target) && failures.length > 0) {
      // The last attempt failed everywhere it could go: the vmodel keeps serving the active model.
      if (!vm.failed) log.warn('vmodel transition failed; active model keeps serving', { vmodelId, target: vm.target, error: failures[0][1].message });
      await management.setTransitionFailed(vmodelId, vm.target, true);
      return;
    }
    if (vm.failed) await management.setTransitionFailed(vmodelId, vm.target, false);
    const copiesUnderWay = Object.keys(target.copies).length;
    if (copiesUnderWay < wanted) {
      const result = await placer.ensureCopy(vm.target, { priority: 'background', preferLocal: false, additional: copiesUnderWay > 0 });
      if (result.kind === 'none' && targetLoaded === 0) await management.setTransitionFailed(vmodelId, vm.target, true);
    }
  }
}
