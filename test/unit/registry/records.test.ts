import { RecordError, decodeInstance, decodeModel, decodeVModel, encodeRecord } from '../../../runtime/src/registry/records';

describe('records', () => {
  test('a model record round-trips', () => {
    const record = { type: 'example', path: '/m/a', copies: { i1: { state: 'loaded' as const, since: 5 } }, failures: { i2: { time: 7, message: 'boom' } }, refs: 1, autoDelete: true, lastUsed: 9, size: 100 };
    expect(decodeModel('a', encodeRecord(record))).toEqual(record);
  });

  test('missing optional fields take defaults', () => {
    expect(decodeModel('a', '{"type":"t"}')).toEqual({ type: 't', path: undefined, key: undefined, copies: {}, failures: {}, refs: 0, autoDelete: false, lastUsed: 0 });
    expect(decodeVModel('v', '{"active":"a","target":"b"}')).toEqual({ active: 'a', target: 'b', failed: false });
  });

  test('malformed records are reported with the key and the field', () => {
    expect(() => decodeModel('a', '{')).toThrow(RecordError);
    expect(() => decodeModel('a', '{"type":1}')).toThrow('model record a is malformed: type must be a string');
    expect(() => decodeModel('a', '{"type":"t","copies":{"i":{"state":"gone","since":1}}}')).toThrow('copies.i.state must be loading or loaded');
    expect(() => decodeInstance('i', '{"address":"x","capacity":1,"used":0,"labels":"a"}')).toThrow('labels must be a list of strings');
    expect(() => decodeVModel('v', '[]')).toThrow('vmodel record v is malformed: not a JSON object');
  });
});
