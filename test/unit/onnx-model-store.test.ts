import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { InferenceSession } from 'onnxruntime-node';
import { OnnxModelStore, OnnxStoreOptions, SessionOpener } from '../../runtime/servers/onnx/model-store';
import { MeshError } from '../../runtime/src/errors';
import { SAMPLE_MODEL_PATH } from '../../scripts/make-sample-onnx';

/** The store's rules (sharing, queueing, timeouts, cancellation, release after use) with sessions opened on demand. */

const SAMPLE_FILE = join(__dirname, '..', '..', SAMPLE_MODEL_PATH);
const SAMPLE_DIR = join(SAMPLE_FILE, '..');
/** A path that cannot exist: inside the sample folder, which holds only the model file. */
const MISSING = join(SAMPLE_DIR, 'no-such-model');
const OPTIONS: OnnxStoreOptions = { maxLoadingConcurrency: 1, loadTimeoutMs: 5_000, modelSizeMultiplier: 1.25, defaultModelSizeBytes: 1_000_000 };

interface FakeSession { session: InferenceSession; released: jest.Mock }

function fakeSession(): FakeSession {
  const released = jest.fn(() => Promise.resolve());
  const session = {
    inputMetadata: [{ name: 'x', isTensor: true, type: 'float32', shape: ['batch', 4] }],
    outputMetadata: [{ name: 'y', isTensor: true, type: 'float32', shape: ['batch', 3] }],
    release: released,
  } as unknown as InferenceSession;
  return { session, released };
}

/** An opener whose sessions open only when the test says so. */
function manualOpener() {
  const opens: { file: string; open: (s: InferenceSession) => void; fail: (e: Error) => void }[] = [];
  const opener: SessionOpener = (file) => new Promise((open, fail) => { opens.push({ file, open, fail }); });
  return { opener, opens };
}

/** Resolves once `check` holds, checking after each turn of the event loop. */
/** Waits for `check` (the store's file reads run on real I/O, which a busy machine slows), failing after 5 s. */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  expect(check()).toBe(true);
}

const request = (modelId: string, modelPath = SAMPLE_DIR) => ({ modelId, modelType: 'mt:onnx', modelPath, modelKey: '' });
const log = (): void => undefined;

describe('OnnxModelStore', () => {
  test('loads of one id share one attempt; other ids wait for a slot; size is the file size × multiplier', async () => {
    const { opener, opens } = manualOpener();
    const store = new OnnxModelStore(OPTIONS, log, opener);
    const first = store.load(request('a'));
    const again = store.load(request('a'));
    const other = store.load(request('b'));
    await until(() => opens.length === 1);
    expect(opens[0].file).toBe(SAMPLE_FILE);
    opens[0].open(fakeSession().session);
    const [a, a2] = await Promise.all([first, again]);
    expect(a).toBe(a2);
    expect(a.sizeInBytes).toBe(Math.ceil(297 * 1.25));
    expect(a.inputs.map((s) => [s.name, s.datatype?.name, s.shape])).toEqual([['x', 'FP32', ['batch', 4]]]);
    await until(() => opens.length === 2);
    opens[1].open(fakeSession().session);
    expect((await other).id).toBe('b');
    expect(store.sizeOf('b')).toBe(372);
  });

  test('a load that outlasts the timeout fails with DEADLINE_EXCEEDED, and its late session is released', async () => {
    const { opener, opens } = manualOpener();
    // Long enough for the model file to be read on a busy machine, so the session is being opened when time runs out.
    const store = new OnnxModelStore({ ...OPTIONS, loadTimeoutMs: 1_000 }, log, opener);
    await expect(store.load(request('slow'))).rejects.toMatchObject({
      code: status.DEADLINE_EXCEEDED, message: 'model slow was not loaded within the load timeout of 1000 ms (--load-timeout-ms / LOADTIME_TIMEOUT)',
    });
    const late = fakeSession();
    opens[0].open(late.session);
    await until(() => late.released.mock.calls.length === 1);
    expect(store.get('slow')).toBeUndefined();
  });

  test('an unload during a load cancels it; the model is not loaded afterwards', async () => {
    const { opener, opens } = manualOpener();
    const store = new OnnxModelStore(OPTIONS, log, opener);
    const loading = store.load(request('m'));
    await until(() => opens.length === 1);
    await store.unload('m');
    await expect(loading).rejects.toMatchObject({ code: status.ABORTED, message: 'load of model m was cancelled by unloadModel' });
    const late = fakeSession();
    opens[0].open(late.session);
    await until(() => late.released.mock.calls.length === 1);
    expect(store.get('m')).toBeUndefined();
  });

  test('onnxruntime\'s refusal becomes INTERNAL carrying its message; a missing file is NOT_FOUND', async () => {
    const { opener, opens } = manualOpener();
    const store = new OnnxModelStore(OPTIONS, log, opener);
    const loading = store.load(request('bad', SAMPLE_FILE));
    await until(() => opens.length === 1);
    opens[0].fail(new Error('Load model from x failed:Protobuf parsing failed.'));
    await expect(loading).rejects.toMatchObject({
      code: status.INTERNAL, message: `onnxruntime could not load ${SAMPLE_FILE}: Load model from x failed:Protobuf parsing failed.`,
    });
    await expect(store.load(request('gone', join(MISSING, 'model.onnx')))).rejects.toMatchObject({ code: status.NOT_FOUND, message: `model path ${join(MISSING, 'model.onnx')} does not exist` });
    await expect(store.load({ ...request('t'), modelType: 'mt:xgboost' })).rejects.toBeInstanceOf(MeshError);
  });

  test('an unload waits for calls using the session before releasing it', async () => {
    const session = fakeSession();
    const store = new OnnxModelStore(OPTIONS, log, () => Promise.resolve(session.session));
    await store.load(request('busy'));
    let finishCall: () => void = () => undefined;
    const using = store.use('busy', () => new Promise<string>((resolve) => { finishCall = () => resolve('answered'); }));
    const unloading = store.unload('busy');
    await expect(store.use('busy', () => Promise.resolve(1))).rejects.toMatchObject({ code: status.NOT_FOUND, message: 'model busy is not loaded in this ONNX runtime' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(session.released).not.toHaveBeenCalled();
    finishCall();
    expect(await using).toBe('answered');
    await unloading;
    expect(session.released).toHaveBeenCalledTimes(1);
    await store.unload('busy');
  });

  test('purge releases every session and cancels every load', async () => {
    const sessions = [fakeSession(), fakeSession()];
    let n = 0;
    const store = new OnnxModelStore({ ...OPTIONS, maxLoadingConcurrency: 2 }, log, () => Promise.resolve(sessions[n++].session));
    await store.load(request('one'));
    await store.load(request('two'));
    await store.purge('test');
    expect(sessions.map((s) => s.released.mock.calls.length)).toEqual([1, 1]);
    expect(store.get('one')).toBeUndefined();
    await store.close();
    await expect(store.load(request('three'))).rejects.toMatchObject({ code: status.UNAVAILABLE, message: 'the ONNX runtime is shutting down' });
  });

  test('predictSize: bytes on disk, else the key\'s disk_size_bytes, times the multiplier; else the default size', async () => {
    const store = new OnnxModelStore(OPTIONS, log);
    expect(await store.predictSize(SAMPLE_DIR, '')).toBe(372);
    expect(await store.predictSize(MISSING, '{"disk_size_bytes":1000}')).toBe(1250);
    expect(await store.predictSize(MISSING, '')).toBe(1_000_000);
  });
});
