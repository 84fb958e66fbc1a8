import { ModelStatusInfo_ModelStatus as ModelStatus, VModelStatusInfo_VModelStatus as VModelStatus } from '../../../proto/gen/model-mesh';
import { activeFailures, modelStatus, modelStatusInfo, vmodelStatusInfo } from '../../../runtime/src/registry/model-state';
import { ModelRecord } from '../../../runtime/src/registry/records';

const EXPIRY = 1_000;
const record = (overrides: Partial<ModelRecord> = {}): ModelRecord => ({ type: 'example', copies: {}, failures: {}, refs: 0, autoDelete: false, lastUsed: 0, ...overrides });

describe('model state', () => {
  test('status: loaded beats loading beats live failures; expired failures do not count', () => {
    expect(modelStatus(undefined, 0, EXPIRY)).toBe(ModelStatus.NOT_FOUND);
    expect(modelStatus(record(), 0, EXPIRY)).toBe(ModelStatus.NOT_LOADED);
    const failures = { a: { time: 100, message: 'boom' } };
    expect(modelStatus(record({ failures }), 500, EXPIRY)).toBe(ModelStatus.LOADING_FAILED);
    expect(modelStatus(record({ failures }), 1_100, EXPIRY)).toBe(ModelStatus.NOT_LOADED);
    expect(modelStatus(record({ failures, copies: { b: { state: 'loading', since: 1 } } }), 500, EXPIRY)).toBe(ModelStatus.LOADING);
    expect(modelStatus(record({ copies: { b: { state: 'loading', since: 1 }, c: { state: 'loaded', since: 2 } } }), 500, EXPIRY)).toBe(ModelStatus.LOADED);
  });

  test('status info lists copies and failures newest first, with the failure messages while not loaded', () => {
    const info = modelStatusInfo(record({
      copies: { b: { state: 'loading', since: 300 } },
      failures: { a: { time: 200, message: 'out of memory' }, old: { time: 1, message: 'expired' } },
    }), 1_100, EXPIRY);
    expect(info).toEqual({
      status: ModelStatus.LOADING,
      errors: ['out of memory (on instance a)'],
      modelCopyInfos: [
        { location: 'b', copyStatus: ModelStatus.LOADING, time: 300 },
        { location: 'a', copyStatus: ModelStatus.LOADING_FAILED, time: 200 },
      ],
    });
    expect(activeFailures(record({ failures: { a: { time: 200, message: 'x' } } }), 1_300, EXPIRY)).toEqual([]);
  });

  test('vmodel status: defined, transitioning, failed, and not found', () => {
    const loaded = modelStatusInfo(record({ copies: { a: { state: 'loaded', since: 1 } } }), 0, EXPIRY);
    expect(vmodelStatusInfo({ active: 'm', target: 'm', failed: false }, loaded, loaded)).toEqual({
      status: VModelStatus.DEFINED, activeModelId: 'm', targetModelId: 'm', activeModelStatus: loaded, targetModelStatus: undefined, owner: '',
    });
    expect(vmodelStatusInfo({ active: 'm', target: 'n', failed: false, owner: 'o' }, loaded, loaded)).toMatchObject({ status: VModelStatus.TRANSITIONING, targetModelStatus: loaded, owner: 'o' });
    expect(vmodelStatusInfo({ active: 'm', target: 'n', failed: true }, loaded, loaded).status).toBe(VModelStatus.TRANSITION_FAILED);
    expect(vmodelStatusInfo(undefined, undefined, undefined).status).toBe(VModelStatus.NOT_FOUND);
  });
});
