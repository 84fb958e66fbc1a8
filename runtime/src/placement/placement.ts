import { TypeConstraints, constraintFor, hasAllLabels } from './type-constraints';

/**
 * Pure placement decisions (design §5). Callers take a snapshot of the cluster, call these functions, then do
 * the I/O and log the returned reasons. Nothing here reads a clock or the store; randomness is injected.
 */

/** What placement needs to know about an instance. */
export interface PlacementInstance {
  readonly id: string;
  readonly capacity: number;
  /** Bytes used, including reservations for loads in flight (and placements this caller made but not yet seen). */
  readonly used: number;
  /** Last-use time of its least recently used copy (ms since epoch); 0 when it holds nothing. */
  readonly lruTime: number;
  readonly loadsInFlight: number;
  readonly rpm: number;
  readonly labels: readonly string[];
  readonly shuttingDown: boolean;
  readonly defaultModelSize: number;
}

export interface LoadPlacementRequest {
  readonly modelId: string;
  readonly modelType: string;
  /** Expected size in bytes. */
  readonly size: number;
  /** Instances that already hold a copy (loading or loaded). */
  readonly holders: ReadonlySet<string>;
  /** Instances where loading this model failed recently. */
  readonly failedIn: ReadonlySet<string>;
  /** Instances to leave out for other reasons (unreachable peers, the caller's own exclusions). */
  readonly excluded?: ReadonlySet<string>;
  /** The instance making the decision. */
  readonly localId?: string;
  /**
   * A call that arrived here waits for this copy: the local instance wins whenever it has near-best free space and
   * no more loads in flight than the least busy, whatever its request rate (loading here saves the call a hop now
   * and every later call arriving here one too).
   */
  readonly preferLocal: boolean;
}

export type LoadPlacement =
  | { readonly kind: 'chosen'; readonly instanceId: string; readonly reasons: readonly string[] }
  | { readonly kind: 'none'; readonly reason: string };

/** Near-best free space counts as best: spreading over the near-best keeps concurrent misses off one instance. */
const NEAR_BEST_FREE_FRACTION = 0.75;

export const freeBytes = (i: PlacementInstance): number => Math.max(0, i.capacity - i.used);

/** Full: less than one default-sized model would fit. */
export const isFull = (i: PlacementInstance): boolean => freeBytes(i) < i.defaultModelSize;

function pickAmongTies<T extends { readonly id: string }>(tied: readonly T[], localId: string | undefined,
  preferLocal: boolean, random: () => number): T {
  if (preferLocal && localId !== undefined) {
    const local = tied.find((i) => i.id === localId);
    if (local) return local;
  }
  return tied[Math.min(tied.length - 1, Math.floor(random() * tied.length))];
}

/** Keeps the items with the smallest key. */
function minimalBy<T>(items: readonly T[], key: (item: T) => number): T[] {
  let best = Infinity;
  let result: T[] = [];
  for (const item of items) {
    const k = key(item);
    if (k < best) {
      best = k;
      result = [item];
    } else if (k === best) {
      result.push(item);
    }
  }
  return result;
}

/**
 * Where to load a copy of a model. Order: eligible instances (not leaving, not failed for this model, not
 * already holding it, labels satisfying the type's required labels; preferred labels narrow further when any
 * instance has them) → instances with room (free space within 75% of the best) → fewest loads in flight →
 * lowest request rate (skipped when the local instance is preferred and still in) → random. When nothing has room:
 * the instance whose least recently used copy is oldest (evicting it costs least), then fewest loads in flight.
 */
export function chooseLoadTarget(request: LoadPlacementRequest, instances: readonly PlacementInstance[],
  constraints: TypeConstraints, random: () => number = Math.random): LoadPlacement {
  const constraint = constraintFor(constraints, request.modelType);
  const skipped = { leaving: 0, failed: 0, holding: 0, labels: 0, excluded: 0, tooSmall: 0 };
  const eligible = instances.filter((i) => {
    if (i.shuttingDown) { skipped.leaving++; return false; }
    if (request.holders.has(i.id)) { skipped.holding++; return false; }
    if (request.failedIn.has(i.id)) { skipped.failed++; return false; }
    if (request.excluded?.has(i.id)) { skipped.excluded++; return false; }
    if (constraint && !hasAllLabels(i.labels, constraint.required)) { skipped.labels++; return false; }
    if (i.capacity < request.size) { skipped.tooSmall++; return false; }
    return true;
  });
  if (eligible.length === 0) {
    const parts = Object.entries(skipped).filter(([, n]) => n > 0).map(([why, n]) => `${n} ${why}`);
    const required = constraint?.required.length ? ` (type ${request.modelType} requires labels ${constraint.required.join(', ')})` : '';
    return {
      kind: 'none',
      reason: `no instance can load model ${request.modelId}: ${instances.length} instance(s)${parts.length ? `, excluded: ${parts.join(', ')}` : ''}${required}`,
    };
  }
  const reasons: string[] = [`${eligible.length} eligible of ${instances.length}`];
  let pool: readonly PlacementInstance[] = eligible;
  if (constraint && constraint.preferred.length > 0) {
    const preferred = pool.filter((i) => hasAllLabels(i.labels, constraint.preferred));
    if (preferred.length > 0) { pool = preferred; reasons.push(`${preferred.length} with preferred labels`); }
  }

  const withRoom = pool.filter((i) => freeBytes(i) >= request.size);
  if (withRoom.length > 0) {
    const bestFree = Math.max(...withRoom.map(freeBytes));
    const nearBest = withRoom.filter((i) => freeBytes(i) >= bestFree * NEAR_BEST_FREE_FRACTION);
    const fewestLoads = minimalBy(nearBest, (i) => i.loadsInFlight);
    const local = request.preferLocal ? fewestLoads.find((i) => i.id === request.localId) : undefined;
    const leastBusy = local ? [local] : minimalBy(fewestLoads, (i) => i.rpm);
    const chosen = pickAmongTies(leastBusy, request.localId, request.preferLocal, random);
    reasons.push(`${nearBest.length} with near-best free space`, local ? 'the local instance, where the call waits' : `${leastBusy.length} least busy`,
      `free ${freeBytes(chosen)} bytes, ${chosen.loadsInFlight} loads in flight, ${chosen.rpm} rpm`);
    return { kind: 'chosen', instanceId: chosen.id, reasons };
  }

  const oldest = minimalBy(minimalBy(pool, (i) => i.lruTime), (i) => i.loadsInFlight);
  const chosen = pickAmongTies(oldest, request.localId, request.preferLocal, random);
  reasons.push('no instance has room: evicting where the least recently used copy is oldest',
    `lru time ${chosen.lruTime}, ${chosen.loadsInFlight} loads in flight`);
  return { kind: 'chosen', instanceId: chosen.id, reasons };
}

/** A loaded copy as the router sees it. */
export interface ServingCopy {
  readonly instanceId: string;
  /** Requests this instance currently has in flight to that copy. */
  readonly inFlight: number;
}

/** Which copy serves a request: the local copy if there is one, else the copy with fewest requests in flight. */
export function chooseServingCopy(copies: readonly ServingCopy[], localId: string | undefined,
  random: () => number = Math.random): ServingCopy | undefined {
  if (copies.length === 0) return undefined;
  const local = localId === undefined ? undefined : copies.find((c) => c.instanceId === localId);
  if (local) return local;
  const leastBusy = minimalBy(copies, (c) => c.inFlight);
  return leastBusy[Math.min(leastBusy.length - 1, Math.floor(random() * leastBusy.length))];
}

/**
 * How many copies to add for a model: one more for each full multiple of the threshold in the per-copy request
 * rate, bounded by the instances that could take one.
 */
export function copiesToAdd(requestsPerMinute: number, copies: number, thresholdRpm: number, candidates: number): number {
  if (copies === 0 || candidates === 0) return 0;
  const perCopy = requestsPerMinute / copies;
  if (perCopy < thresholdRpm) return 0;
  return Math.min(candidates, Math.max(1, Math.floor(perCopy / thresholdRpm)));
}
