import { LoopPeriod, forEachConcurrently } from './load';
import { MeshHandle, callMesh } from '../../test/harness/modelmesh';

/** The example runtime's model type. */
export const EXAMPLE_TYPE = 'example';

/**
 * Registers models `idOf(0)` … `idOf(count - 1)`, all of type `example` at `path`, through the management API with
 * `concurrency` calls in flight, taking turns between the meshes as clients behind a Service would.
 */
export function registerModels(meshes: readonly MeshHandle[], count: number, concurrency: number, idOf: (index: number) => string,
  path: string): Promise<LoopPeriod> {
  return forEachConcurrently(count, concurrency, async (i) => {
    await callMesh(meshes[i % meshes.length].client, 'registerModel', { modelId: idOf(i), modelInfo: { type: EXAMPLE_TYPE, path, key: '' } });
  });
}
