import { encodeRawBytes } from '../../../runtime/servers/shared/bytes-tensor';
import { DATATYPES, Datatype, TensorElements } from '../../../runtime/src/rest/datatypes';
import { decodeRaw, encodeRaw, fp16Bits, fp16Value } from '../../../runtime/src/rest/raw';

describe('FP16', () => {
  test.each([
    [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [65519, 0x7bff], [0, 0], [-0, 0x8000],
    [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0], [0.1, 0x2e66], [1 / 3, 0x3555],
    [Infinity, 0x7c00], [-Infinity, 0xfc00], [NaN, 0x7e00],
    // Ties go to the even mantissa.
    [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [3 * 2 ** -25, 0x0002],
  ])('%p encodes as bits %p', (value, bits) => {
    expect(fp16Bits(value, 'x')).toBe(bits);
  });

  test('every bit pattern decodes and encodes back to itself (NaNs aside)', () => {
    const mismatches: string[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = fp16Value(bits);
      const isNaNPattern = bits % 0x8000 > 0x7c00;
      if (Number.isNaN(value) !== isNaNPattern) mismatches.push(`0x${bits.toString(16)} decodes as ${value}`);
      else if (!isNaNPattern && fp16Bits(value, 'x') !== bits) mismatches.push(`0x${bits.toString(16)} → ${value} → ${fp16Bits(value, 'x')}`);
    }
    expect(mismatches).toEqual([]);
  });

  test('values that would round to infinity are refused, naming the element', () => {
    expect(() => fp16Bits(65520, 'input tensor "h" element 3')).toThrow('input tensor "h" element 3 is 65520, beyond the largest FP16 value (65504)');
    expect(() => fp16Bits(-1e6, 'e')).toThrow(/beyond the largest FP16 value/);
  });
});

describe('raw contents', () => {
  const samples: Record<Datatype, TensorElements> = {
    BOOL: [true, false, true],
    UINT8: [0, 1, 255],
    UINT16: [0, 65535],
    UINT32: [0, 4294967295],
    UINT64: [0, Number.MAX_SAFE_INTEGER],
    INT8: [-128, 0, 127],
    INT16: [-32768, 32767],
    INT32: [-2147483648, 2147483647],
    INT64: [Number.MIN_SAFE_INTEGER, -1, Number.MAX_SAFE_INTEGER],
    FP16: [1, -0.5, 65504, 2 ** -24],
    FP32: [1.5, -3.25, Math.fround(0.1)],
    FP64: [0.1, -1e300, Number.MIN_VALUE],
    BYTES: [Buffer.from('a'), Buffer.alloc(0), Buffer.from([0xff, 0x00])],
  };

  test.each(DATATYPES.map((d) => [d]))('%s round-trips through raw bytes', (datatype) => {
    const raw = encodeRaw(datatype, samples[datatype], 't');
    expect(decodeRaw(datatype, raw, 't')).toEqual(samples[datatype]);
  });

  test('the layout is little-endian with length-prefixed BYTES', () => {
    expect([...encodeRaw('INT32', [1, -2], 't')]).toEqual([1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]);
    expect([...encodeRaw('FP16', [1], 't')]).toEqual([0x00, 0x3c]);
    expect([...encodeRaw('BOOL', [true, false], 't')]).toEqual([1, 0]);
    expect([...encodeRawBytes([Buffer.from('hi')])]).toEqual([2, 0, 0, 0, 0x68, 0x69]);
  });

  test('decodes from a view into a larger buffer', () => {
    const backing = Buffer.from([9, 9, 1, 0, 2, 0, 9]);
    expect(decodeRaw('UINT16', backing.subarray(2, 6), 't')).toEqual([1, 2]);
  });

  test('bytes that do not divide into elements are refused, naming the tensor', () => {
    expect(() => decodeRaw('FP32', Buffer.alloc(6), 'output tensor "y"'))
      .toThrow('output tensor "y": raw contents of 6 bytes are not a whole number of FP32 elements (4 bytes each)');
  });

  test('BYTES whose length prefix runs past the end are refused', () => {
    expect(() => decodeRaw('BYTES', Buffer.from([5, 0, 0, 0, 1]), 'output tensor "s"'))
      .toThrow('output tensor "s": raw BYTES element 0 claims 5 bytes but only 1 remain');
    expect(() => decodeRaw('BYTES', Buffer.from([1, 0, 0, 0, 7, 1, 0]), 'output tensor "s"'))
      .toThrow('output tensor "s": raw BYTES contents end inside a length prefix at byte 5');
  });

  test('64-bit integers beyond ±(2^53 - 1) are refused rather than rounded', () => {
    const big = Buffer.alloc(16);
    big.writeBigInt64LE(1n, 0);
    big.writeBigInt64LE(2n ** 53n, 8);
    expect(() => decodeRaw('INT64', big, 'output tensor "n"')).toThrow(/output tensor "n" element 1 is 9007199254740992, beyond ±\(2\^53 - 1\)/);
    const negative = Buffer.alloc(8);
    negative.writeBigInt64LE(-(2n ** 60n));
    expect(() => decodeRaw('INT64', negative, 'n')).toThrow(/refused rather than rounded/);
    const unsigned = Buffer.alloc(8);
    unsigned.writeBigUInt64LE(2n ** 64n - 1n);
    expect(() => decodeRaw('UINT64', unsigned, 'u')).toThrow(/18446744073709551615/);
  });
});
