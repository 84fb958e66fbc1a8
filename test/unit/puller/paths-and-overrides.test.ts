import { PullError } from '../../../runtime/src/puller/errors';
import {
  checkModelId, checkRemotePath, isInside, joinInside, localNameOf, relativeObjectPath,
} from '../../../runtime/src/puller/paths';
import { applyOverrides } from '../../../runtime/src/puller/storage-config';

describe('applyOverrides (upstream\'s dot-path storage_params)', () => {
  test('sets top-level and nested strings, creating objects on the way', () => {
    const config: Record<string, unknown> = { type: 's3', bucket: 'a', headers: { 'X-A': '1' } };
    applyOverrides(config, { 'bucket': 'b', 'headers.X-B': '2', 'new.deep.field': 'v' });
    expect(config).toEqual({ type: 's3', bucket: 'b', headers: { 'X-A': '1', 'X-B': '2' }, new: { deep: { field: 'v' } } });
  });

  test('refuses to replace a non-string or to walk through a non-object', () => {
    expect(() => applyOverrides({ port: 9000 }, { port: '1' })).toThrow("storage_params 'port': only string fields can be overridden");
    expect(() => applyOverrides({ headers: { a: '1' } }, { headers: 'x' })).toThrow('only string fields');
    expect(() => applyOverrides({ bucket: 'b' }, { 'bucket.name': 'x' })).toThrow("'bucket' is not an object");
  });
});

describe('validation of ids and paths', () => {
  test.each(['m', 'mnist__isvc-1a2b3c', 'model.v2', '-dash', 'ünïcode', 'x'.repeat(255)])('accepts model id %s', (id) => {
    expect(() => checkModelId(id)).not.toThrow();
  });

  test.each(['', '.', '..', '../x', 'a/b', 'a\\b', 'nul\0', 'tab\t', 'x'.repeat(256), 'é'.repeat(128)])('refuses model id %j', (id) => {
    expect(() => checkModelId(id)).toThrow(PullError);
  });

  test('remote paths may be anything but ".." segments and control characters', () => {
    for (const ok of ['a/b', '/abs', 'a..b/c', '...', 'dir/', '']) expect(() => checkRemotePath(ok, 'model path')).not.toThrow();
    for (const bad of ['..', '../a', 'a/../b', 'a/..', 'a\\..\\b', 'a\0b', 'a\nb']) expect(() => checkRemotePath(bad, 'model path')).toThrow(PullError);
  });

  test('local names are the last path element, or _model', () => {
    expect(localNameOf('a/b/model.onnx')).toBe('model.onnx');
    expect(localNameOf('models/mnist/')).toBe('mnist');
    expect(localNameOf('single')).toBe('single');
    expect(localNameOf('')).toBe('_model');
    expect(localNameOf('/')).toBe('_model');
    expect(localNameOf('.')).toBe('_model');
  });

  test('object paths below a prefix keep their layout and may not climb', () => {
    expect(relativeObjectPath('/1/model.onnx', 'p/1/model.onnx')).toBe('1/model.onnx');
    expect(relativeObjectPath('a//b', 'p/a//b')).toBe('a/b');
    expect(() => relativeObjectPath('/../../etc/x', 'p/../../etc/x')).toThrow('cannot be stored locally');
    expect(() => relativeObjectPath('/./x', 'p/./x')).toThrow(PullError);
  });

  test('joinInside refuses results outside the parent', () => {
    expect(joinInside('/models', 'm')).toBe('/models/m');
    expect(() => joinInside('/models', '../etc')).toThrow('escapes');
    expect(() => joinInside('/models', '/etc')).toThrow('escapes');
    expect(isInside('/models', '/models')).toBe(true);
    expect(isInside('/models', '/models-other/x')).toBe(false);
    expect(isInside('/models', '/models/..x')).toBe(true);
  });
});
