import { status } from '@grpc/grpc-js';
import { LocalCopies } from '../cache/local-copies';
import { Cluster } from '../cluster/cluster';
import { MeshError } from '../errors';
import { LoadPriority } from '../loader';
import { Logger } from '../log';
import { LoadPlacement, PlacementInstance, TypeConstraints, chooseLoadTarget } from '../placement';
import { Peers } from './peers';
import { activeFailures, hasAnyCopy } from '../registry/model-state';
import { ModelRecord } from '../registry/records';
import { Registry, UNCHANGED } from '../registry/registry';

/**
 * Decides where copies go and starts their loads: takes the cluster snapshot, adds this instance's own recent
 * placements that the targets have not published yet (so a burst of misses spreads instead of piling onto one
 * instance), claims the copy in the registry, then hands the load to the target.
 */

export interface PlacerOptions {
  readonly selfId: string;
  readonly cluster: Cluster;
  readonly registry: Registry;
  readonly peers: Peers;
  readonly log: Logger;
  readonly constraints: () => TypeConstraints;
  readonly failureExpiryMs: number;
  /** How long a peer that could not be reached is left out of placement. */
  readonly suspectMs?: number;
  readonly now?: () => number;
  readonly random?: () => number;
}

export type EnsureCopyResult =
  | { readonly kind: 'started'; readonly instanceId: string }
  | { readonly kind: 'exists' }
  | { readonly kind: 'none'; readonly reason: string };

interface Reservation { readonly bytes: number; readonly at: number }

/** Upper bound on waiting for a peer's load (its runtime's own load timeout applies inside). */
const PEER_LOAD_TIMEOUT_MS = 10 * 60_000;

export class Placer {
  private readonly reservations = new Map<string, Reservation[]>();
  private readonly suspects = new Map<string, number>();
  private localCopies!: LocalCopies;
  private readonly now: () => number;

  constructor(private readonly o: PlacerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Wired after construction: the local copies and the placer each need the other. */
  attach(localCopies: LocalCopies): void {
    this.localCopies = localCopies;
  }

  /**
   * Whether the model has a copy, loaded or loading, on an instance outside `excluded`: one the registry lists, or a
   * load under way here that a quick load never claims there (see LocalCopies).
   */
  hasCopyUnderWay(modelId: string, record: ModelRecord, excluded?: ReadonlySet<string>): boolean {
    if (excluded ? Object.keys(record.copies).some((i) => !excluded.has(i)) : hasAnyCopy(record)) return true;
    return !excluded?.has(this.o.selfId) && this.localCopies.isLoading(modelId);
  }

  /** A peer could not be reached: leave it out of placement for a while (its lease will clean up if it is gone). */
  markSuspect(instanceId: string): void {
    this.suspects.set(instanceId, this.now() + (this.o.suspectMs ?? 10_000));
  }

  private snapshot(): PlacementInstance[] {
    const now = this.now();
    const result: PlacementInstance[] = [];
    for (const [id, r] of this.o.cluster.live()) {
      let used = r.used;
      const mine = this.reservations.get(id);
      if (mine) {
        // Reservations the target's record already reflects (published after them) are dropped.
        const pending = mine.filter((x) => x.at >= r.updated && now - x.at < 30_000);
        if (pending.length) this.reservations.set(id, pending); else this.reservations.delete(id);
        for (const x of pending) used += x.bytes;
      }
      result.push({
        id,
        capacity: r.capacity,
        used,
        lruTime: r.lruTime,
        loadsInFlight: r.loadsInFlight,
        rpm: r.rpm,
        labels: r.labels,
        shuttingDown: r.shuttingDown,
        defaultModelSize: r.defaultModelSize,
      });
    }
    return result;
  }

  private excluded(): Set<string> {
    const now = this.now();
    const result = new Set<string>();
    for (const [id, until] of this.suspects) if (until > now) result.add(id); else this.suspects.delete(id);
    return result;
  }

  /** Pure choice of a target for `record` as it stands. */
  choose(modelId: string, record: ModelRecord, preferLocal: boolean, alsoExcluded?: ReadonlySet<string>): LoadPlacement {
    const failedIn = new Set(activeFailures(record, this.now(), this.o.failureExpiryMs).map(([id]) => id));
    const instances = this.snapshot();
    const excluded = this.excluded();
    for (const id of alsoExcluded ?? []) excluded.add(id);
    const size = record.size ?? Math.max(1, ...instances.map((i) => i.defaultModelSize));
    return chooseLoadTarget({
      modelId,
      modelType: record.type,
      size,
      holders: new Set(Object.keys(record.copies)),
      failedIn,
      excluded,
      localId: this.o.selfId,
      preferLocal,
    }, instances, this.o.constraints(), this.o.random);
  }

  private reserve(instanceId: string, record: ModelRecord): void {
    if (instanceId === this.o.selfId) return;
    const bytes = record.size ?? this.o.cluster.get(instanceId)?.defaultModelSize ?? 0;
    const list = this.reservations.get(instanceId) ?? [];
    list.push({ bytes, at: this.now() });
    this.reservations.set(instanceId, list);
  }

  /** For a failed load: the next target, or undefined when no candidate is left. Reserves on the target. */
  chooseRetryTarget(modelId: string, afterFailure: ModelRecord): string | undefined {
    const placement = this.choose(modelId, afterFailure, false);
    if (placement.kind === 'none') return undefined;
    this.reserve(placement.instanceId, afterFailure);
    return placement.instanceId;
  }

  /**
   * Makes sure a copy of the model exists or is being loaded on an instance outside `excluded`. With `additional`,
   * adds a copy even when others exist (scale-out, vmodel targets). Does not wait for the load.
   */
  async ensureCopy(modelId: string, options: {
    priority: LoadPriority;
    preferLocal: boolean;
    additional?: boolean;
    excluded?: ReadonlySet<string>;
    /**
     * A data-plane call waits on this instance and counts a load here from its dispatch (`hasCopyUnderWay`), so a
     * copy placed here may start loading before its claim is written.
     */
    callWaitsHere?: boolean;
  }): Promise<EnsureCopyResult> {
    let result: EnsureCopyResult = { kind: 'exists' };
    const excluded = options.excluded;
    const known = this.o.registry.models.get(modelId);
    if (options.callWaitsHere && !options.additional && known && !this.hasCopyUnderWay(modelId, known, excluded)) {
      // A copy for a call waiting here, placed here: the load starts at once and writes its own claim while the
      // model server loads, instead of after a claim round trip. Calls arriving here meanwhile join that load; a
      // miss raced on another instance at worst adds a second copy, which the LRU reclaims when space is needed.
      const placement = this.choose(modelId, known, true, excluded);
      if (placement.kind === 'chosen' && placement.instanceId === this.o.selfId) {
        this.o.log.info('placed model', { modelId, on: placement.instanceId, reasons: placement.reasons });
        this.dispatch(placement.instanceId, modelId, options.priority);
        return { kind: 'started', instanceId: placement.instanceId };
      }
    }
    const record = await this.o.registry.models.update(modelId, (r) => {
      if (!r) throw new MeshError(status.NOT_FOUND, `model ${modelId} is not registered`);
      if (!options.additional && this.hasCopyUnderWay(modelId, r, excluded)) {
        result = { kind: 'exists' };
        return UNCHANGED;
      }
      const placement = this.choose(modelId, r, options.preferLocal, excluded);
      if (placement.kind === 'none') {
        result = { kind: 'none', reason: placement.reason };
        return UNCHANGED;
      }
      result = { kind: 'started', instanceId: placement.instanceId };
      this.o.log.info('placed model', { modelId, on: placement.instanceId, reasons: placement.reasons });
      return { ...r, copies: { ...r.copies, [placement.instanceId]: { state: 'loading', since: this.now() } } };
    });
    const decided = result as EnsureCopyResult;
    if (decided.kind === 'started' && record) {
      this.reserve(decided.instanceId, record);
      this.dispatch(decided.instanceId, modelId, options.priority);
    }
    return decided;
  }

  /**
   * Starts the load on `instanceId` (already claimed in the registry) without waiting. A peer that cannot be
   * reached is marked suspect, its claim withdrawn, and the model placed again elsewhere.
   */
  dispatch(instanceId: string, modelId: string, priority: LoadPriority): void {
    if (instanceId === this.o.selfId) {
      this.localCopies.loadHere(modelId, priority).catch(() => undefined);
      return;
    }
    const peer = this.o.cluster.get(instanceId);
    if (!peer) {
      void this.withdraw(instanceId, modelId, priority, 'it is no longer a member');
      return;
    }
    this.o.peers.loadHere(peer.address, modelId, priority, PEER_LOAD_TIMEOUT_MS).catch((err: MeshError) => {
      // A load failure is recorded by the peer itself; only an unreachable peer is ours to handle.
      if (err.code === status.UNAVAILABLE) {
        this.markSuspect(instanceId);
        void this.withdraw(instanceId, modelId, priority, err.message);
      }
    });
  }

  private async withdraw(instanceId: string, modelId: string, priority: LoadPriority, why: string): Promise<void> {
    this.o.log.warn('could not start load on instance; placing elsewhere', { modelId, instanceId, why });
    try {
      await this.o.registry.models.update(modelId, (r) => {
        if (!r || r.copies[instanceId]?.state !== 'loading') return UNCHANGED;
        const { [instanceId]: _gone, ...copies } = r.copies;
        return { ...r, copies };
      });
      await this.ensureCopy(modelId, { priority, preferLocal: false });
    } catch (err) {
      this.o.log.warn('re-placing model failed', { modelId, err: err as Error });
    }
  }
}
