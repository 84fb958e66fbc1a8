import { LeaveDeps, leaveMesh } from '../../../runtime/src/lifecycle/leave';
import { createLogger } from '../../../runtime/src/log';

/** An in-memory cluster: which models are loaded where, and the order things happened in. */
function cluster(local: Array<[string, number]>, elsewhere: string[] = [], cannotMove: string[] = []) {
  const events: string[] = [];
  const localCopies = new Map(local);
  const loadedElsewhere = new Set(elsewhere);
  const deps: LeaveDeps = {
    now: () => 10_000_000,
    localCopies: () => [...localCopies].map(([modelId, lastUsed]) => ({ modelId, lastUsed })),
    loadedElsewhere: (id) => loadedElsewhere.has(id),
    copyElsewhere: async (id) => {
      if (cannotMove.includes(id)) return false;
      events.push(`load elsewhere ${id}`);
      return true;
    },
    waitLoadedElsewhere: async (id) => {
      await new Promise((resolve) => setImmediate(resolve));
      loadedElsewhere.add(id);
      events.push(`loaded elsewhere ${id}`);
      return true;
    },
    unloadLocal: async (id) => {
      events.push(`unload here ${id}${loadedElsewhere.has(id) ? ' (copy elsewhere)' : ''}`);
      localCopies.delete(id);
    },
    log: createLogger('silent'),
  };
  return { deps, events };
}

describe('leaving the mesh', () => {
  test('every recently used model is loaded elsewhere before anything is unloaded here, most recent first', async () => {
    const hour = 3_600_000;
    const { deps, events } = cluster([['old', 10_000_000 - 2 * hour], ['warm', 10_000_000 - 60_000], ['hot', 10_000_000 - 1_000], ['shared', 10_000_000 - 5]], ['shared']);
    const report = await leaveMesh(deps, { deadline: Infinity, concurrency: 1 });
    expect(events).toEqual([
      'load elsewhere hot', 'loaded elsewhere hot',
      'load elsewhere warm', 'loaded elsewhere warm',
      'unload here old',
      'unload here warm (copy elsewhere)',
      'unload here hot (copy elsewhere)',
      'unload here shared (copy elsewhere)',
    ]);
    expect(report).toEqual({ moved: ['hot', 'warm'], alreadyElsewhere: ['shared'], notMoved: [], unloaded: 4 });
  });

  test('a model nobody can take is reported and still unloaded after the moves', async () => {
    const { deps, events } = cluster([['stuck', 10_000_000 - 1], ['fine', 10_000_000 - 2]], [], ['stuck']);
    const report = await leaveMesh(deps, { deadline: Infinity, concurrency: 1 });
    expect(report.notMoved).toEqual(['stuck']);
    expect(events.indexOf('loaded elsewhere fine')).toBeLessThan(events.indexOf('unload here stuck'));
  });

  test('past the deadline no new move starts', async () => {
    const { deps, events } = cluster([['late', 10_000_000 - 1]]);
    const report = await leaveMesh(deps, { deadline: 0 });
    expect(report.notMoved).toEqual(['late']);
    expect(events).toEqual(['unload here late']);
  });
});
