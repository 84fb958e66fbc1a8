import { forEachLimit } from '../concurrency';
import { Logger } from '../log';

/**
 * Make-before-break leave: before this instance unloads anything, every model used recently gets a loaded copy on
 * another instance, most recently used first. Only then are the local copies unloaded. The I/O comes in as
 * functions so the order is testable on its own.
 */

export interface LeaveDeps {
  readonly now: () => number;
  /** Loaded local copies with their last use. */
  readonly localCopies: () => ReadonlyArray<{ readonly modelId: string; readonly lastUsed: number }>;
  /** Whether another live instance that is not leaving has the model loaded. */
  readonly loadedElsewhere: (modelId: string) => boolean;
  /** Starts a load on another instance; false when no instance can take it. */
  readonly copyElsewhere: (modelId: string) => Promise<boolean>;
  /** Resolves true once a copy elsewhere is loaded, false if that did not happen by `deadline`. */
  readonly waitLoadedElsewhere: (modelId: string, deadline: number) => Promise<boolean>;
  readonly unloadLocal: (modelId: string) => Promise<void>;
  readonly log: Logger;
}

export interface LeaveOptions {
  /** Models used within this long are moved before leaving. @default one hour */
  readonly recentMs?: number;
  /** When moving stops and unloading starts regardless. */
  readonly deadline: number;
  /** Moves under way at once (the receivers' loading queues take the rest). @default 8 */
  readonly concurrency?: number;
}

export interface LeaveReport {
  readonly moved: string[];
  readonly alreadyElsewhere: string[];
  /** Recently used models that had no copy elsewhere by the deadline (their next call loads them again). */
  readonly notMoved: string[];
  readonly unloaded: number;
}

export async function leaveMesh(deps: LeaveDeps, options: LeaveOptions): Promise<LeaveReport> {
  const since = deps.now() - (options.recentMs ?? 3_600_000);
  const recent = deps.localCopies().filter((c) => c.lastUsed >= since).sort((a, b) => b.lastUsed - a.lastUsed);
  const report = { moved: [] as string[], alreadyElsewhere: [] as string[], notMoved: [] as string[], unloaded: 0 };
  await forEachLimit(recent, options.concurrency ?? 8, async ({ modelId }) => {
    if (deps.loadedElsewhere(modelId)) {
      report.alreadyElsewhere.push(modelId);
      return;
    }
    const started = deps.now() < options.deadline && await deps.copyElsewhere(modelId).catch(() => false);
    const loaded = started && await deps.waitLoadedElsewhere(modelId, options.deadline).catch(() => false);
    (loaded ? report.moved : report.notMoved).push(modelId);
  });
  deps.log.info('moved recently used models before leaving', {
    moved: report.moved.length, alreadyElsewhere: report.alreadyElsewhere.length, notMoved: report.notMoved.length,
  });
  for (const { modelId } of deps.localCopies()) {
    await deps.unloadLocal(modelId);
    report.unloaded++;
  }
  return report;
}
