import { lstatSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type PullerFixture, expectPullError, pullerFixture } from './helpers';

/** The puller's `pvc` type: a local folder stands in for the claim mounted at `<pvcMountsDir>/<name>/`. */

let fx: PullerFixture;
let claim: string;

beforeEach(() => {
  fx = pullerFixture();
  claim = join(fx.pvcMountsDir, 'models-pvc');
  mkdirSync(join(claim, 'fraud'), { recursive: true });
  mkdirSync(join(claim, 'bert', '1'), { recursive: true });
  writeFileSync(join(claim, 'fraud', 'model.onnx'), 'pvc-fraud');
  writeFileSync(join(claim, 'bert', 'vocab.txt'), 'vocab');
  writeFileSync(join(claim, 'bert', '1', 'w.bin'), 'weights');
  mkdirSync(join(fx.pvcMountsDir, 'other-claim'));
  writeFileSync(join(fx.pvcMountsDir, 'other-claim', 'private.bin'), 'other team');
  fx.setKey('pvc1', { type: 'pvc', name: 'models-pvc' });
});

afterEach(() => fx.cleanup());

test('links a file and a folder from the claim, counting the size of what the link points at', async () => {
  const file = await fx.puller.pull('p-1', 'fraud/model.onnx', JSON.stringify({ storage_key: 'pvc1' }));
  expect(file.localPath).toBe(join(fx.rootModelDir, 'p-1', 'model.onnx'));
  expect(lstatSync(file.localPath).isSymbolicLink()).toBe(true);
  expect(readlinkSync(file.localPath)).toBe(join(claim, 'fraud', 'model.onnx'));
  expect(fx.read('p-1/model.onnx')).toBe('pvc-fraud');
  expect(file.diskSizeBytes).toBe(9);

  const folder = await fx.puller.pull('p-2', '/bert', JSON.stringify({ storage_key: 'pvc1' }));
  expect(folder.localPath).toBe(join(fx.rootModelDir, 'p-2', 'bert'));
  expect(fx.read('p-2/bert/1/w.bin')).toBe('weights');
  expect(folder.diskSizeBytes).toBe('vocab'.length + 'weights'.length);
});

test('copies instead of linking with pvcMode: copy', async () => {
  const result = await fx.withOptions({ pvcMode: 'copy' }).pull('p-3', 'bert', JSON.stringify({ storage_key: 'pvc1' }));
  expect(lstatSync(result.localPath).isSymbolicLink()).toBe(false);
  expect(fx.listRoot()).toEqual(['p-3', 'p-3/bert', 'p-3/bert/1', 'p-3/bert/1/w.bin', 'p-3/bert/vocab.txt']);
});

test('a pvc:// model path needs no storage-config entry (a missing default is not an error)', async () => {
  const result = await fx.puller.pull('p-4', 'pvc://models-pvc/fraud/model.onnx', '');
  expect(result).toMatchObject({ storageKey: 'default_pvc', type: 'pvc' });
  expect(fx.read('p-4/model.onnx')).toBe('pvc-fraud');
});

test('a missing path fails with NOT_FOUND naming key and object; a missing claim too', async () => {
  await expectPullError(fx.puller.pull('p-5', 'nope/model.onnx', JSON.stringify({ storage_key: 'pvc1' })),
    'not-found', ["storage key 'pvc1'", 'pvc://models-pvc/nope/model.onnx']);
  await expectPullError(fx.puller.pull('p-6', 'pvc://no-such-claim/m.onnx', ''),
    'not-found', ["storage key 'default_pvc'", 'pvc://no-such-claim/']);
  expect(fx.listRoot()).toEqual([]);
});

test('a path that climbs out of the claim is refused, by ".." or through a link', async () => {
  await expectPullError(fx.puller.pull('p-7', '../other-claim/private.bin', JSON.stringify({ storage_key: 'pvc1' })),
    'invalid-request', ["'../other-claim/private.bin'", "contains '..'"]);
  symlinkSync(join(fx.pvcMountsDir, 'other-claim'), join(claim, 'sneaky'));
  await expectPullError(fx.puller.pull('p-8', 'sneaky/private.bin', JSON.stringify({ storage_key: 'pvc1' })),
    'invalid-request', ["storage key 'pvc1'", 'pvc://models-pvc/sneaky/private.bin', 'outside the claim']);
  await expectPullError(fx.puller.pull('p-9', 'x', JSON.stringify({ storage_params: { type: 'pvc', name: '..' } })),
    'invalid-request', ["PVC name '..'"]);
  expect(fx.listRoot()).toEqual([]);
});

test('remove deletes the link, never the claim\'s files', async () => {
  await fx.puller.pull('p-10', 'bert', JSON.stringify({ storage_key: 'pvc1' }));
  await fx.puller.remove('p-10');
  expect(fx.listRoot()).toEqual([]);
  expect(lstatSync(join(claim, 'bert', 'vocab.txt')).isFile()).toBe(true);
});
