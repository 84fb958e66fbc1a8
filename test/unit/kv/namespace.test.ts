import { prefixRangeEnd, storeNamespace } from '../../../runtime/src/kv/namespace';

describe('storeNamespace', () => {
  test.each([
    ['', 'mm', 'modelmesh-serving', '/mm/modelmesh-serving/'],
    ['modelmesh-serving', 'mm', 'svc', 'modelmesh-serving/mm/svc/'],
    ['/root', 'mm', 'svc', '/root/mm/svc/'],
    ['/root/', 'mm', 'svc', '/root/mm/svc/'],
    ['/root//', '', 'svc', '/root/svc/'],
    ['a/b', 'mm', 'svc', 'a/b/mm/svc/'],
  ])('root %j, prefix %j, service %j → %j', (root, kvPrefix, service, expected) => {
    expect(storeNamespace(root, kvPrefix, service)).toBe(expected);
  });
});

describe('prefixRangeEnd', () => {
  test('increments the last byte that can be incremented', () => {
    expect(prefixRangeEnd(Buffer.from('/mm/svc/')).toString()).toBe('/mm/svc0');
    expect([...prefixRangeEnd(Buffer.from([0x61, 0xff, 0xff]))]).toEqual([0x62]);
  });

  test('an empty or all-0xff prefix ranges to the end of the key space', () => {
    expect([...prefixRangeEnd(Buffer.alloc(0))]).toEqual([0]);
    expect([...prefixRangeEnd(Buffer.from([0xff]))]).toEqual([0]);
  });

  test('does not modify its input', () => {
    const prefix = Buffer.from('ab');
    prefixRangeEnd(prefix);
    expect(prefix.toString()).toBe('ab');
  });
});
