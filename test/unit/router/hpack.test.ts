import { HpackDecoder, HpackError, encodeHeaderBlock } from '../../../runtime/src/h2/hpack';
import { huffmanDecode } from '../../../runtime/src/h2/huffman';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const decoder = () => new HpackDecoder(4_096, 1 * 2 ** 20);

describe('HPACK Huffman decoding', () => {
  // Codes worked out by hand from RFC 7541 Appendix B: 'w' 1111000, '.' 010111, 'e' 00101, '0' 00000, '1' 00001, EOS prefix 1s.
  test('decodes strings whose bits span byte boundaries, with padding of 1s', () => {
    const decode = (bytes: Buffer) => huffmanDecode(bytes, 0, bytes.length);
    expect(decode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'))).toBe('www.example.com');
    expect(decode(hex('a8eb 1064 9cbf'))).toBe('no-cache');
    expect(decode(hex('25a8 49e9 5ba9 7d7f'))).toBe('custom-key');
    expect(decode(hex('0003'))).toBe('001');
  });

  test('rejects padding that is not a prefix of EOS, padding of 8 bits or more, and EOS itself', () => {
    const decode = (bytes: Buffer) => () => huffmanDecode(bytes, 0, bytes.length);
    // '0' (00000) followed by 000 instead of 111.
    expect(decode(hex('00'))).toThrow(/padding/);
    // '0' then a whole byte of 1s: 11 bits of padding.
    expect(decode(hex('07ff'))).toThrow(/padding/);
    // 30 ones are EOS.
    expect(decode(hex('ffff fffc'))).toThrow(/EOS/);
  });
});

describe('HPACK header blocks', () => {
  test('indexed static entries, literals with and without indexing, and dynamic table references', () => {
    const d = decoder();
    // :method GET, :scheme http, :path /, then ":authority: www.example.com" with incremental indexing (static name 1).
    const first = Buffer.concat([hex('82 86 84 41 0f'), Buffer.from('www.example.com')]);
    expect(d.decode(first)).toEqual([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]);
    // The authority is now dynamic entry 62; add "cache-control: no-cache" (Huffman), which becomes 62 and pushes the authority to 63.
    const second = Buffer.concat([hex('82 86 84 be 58 86 a8eb 1064 9cbf')]);
    expect(d.decode(second)).toEqual([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']]);
    expect(d.decode(hex('be bf'))).toEqual([['cache-control', 'no-cache'], [':authority', 'www.example.com']]);
    // A literal never indexed with a new name is returned but not stored: index 64 still does not exist.
    expect(d.decode(Buffer.concat([hex('10 08'), Buffer.from('password'), hex('06'), Buffer.from('secret')]))).toEqual([['password', 'secret']]);
    expect(() => d.decode(hex('c0'))).toThrow(/index 64/);
  });

  test('evicts the oldest entries when the table is full, and obeys a size update', () => {
    const d = new HpackDecoder(100, 1 * 2 ** 20);
    const insert = (name: string, value: string) => Buffer.concat([
      Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value),
    ]);
    // Each entry is 32 + 2 + 10 = 44 bytes: two fit in 100, a third evicts the first.
    d.decode(Buffer.concat([insert('aa', '0123456789'), insert('bb', '0123456789'), insert('cc', '0123456789')]));
    expect(d.decode(hex('be bf'))).toEqual([['cc', '0123456789'], ['bb', '0123456789']]);
    expect(() => d.decode(hex('c0'))).toThrow(HpackError);
    // A size update to 50 keeps only the newest entry; it must come before any field of its block.
    expect(d.decode(Buffer.concat([hex('3f 13'), hex('be')]))).toEqual([['cc', '0123456789']]);
    expect(() => d.decode(hex('bf'))).toThrow(/beyond the tables/);
    expect(() => d.decode(hex('be 3f 13'))).toThrow(/size update after a header field/);
    expect(() => d.decode(hex('3f 66'))).toThrow(/above the announced 100/);
  });

  test('truncated input and an oversized header list are errors, not a crash', () => {
    expect(() => decoder().decode(hex('41 0f 7777'))).toThrow(/truncated string/);
    expect(() => decoder().decode(hex('ff'))).toThrow(/truncated integer/);
    expect(() => decoder().decode(hex('ff ff ff ff ff ff'))).toThrow(/integer too large|truncated/);
    const small = new HpackDecoder(4_096, 64);
    expect(() => small.decode(Buffer.concat([hex('00 01'), Buffer.from('x'), hex('40'), Buffer.alloc(64, 'v')]))).toThrow(/larger than 64 bytes/);
  });

  test('the encoder writes literals any decoder reads back, long values included, and drops connection-specific fields', () => {
    const fields: Array<[string, string]> = [
      [':method', 'POST'], [':path', '/inference.GRPCInferenceService/ModelInfer'], ['content-type', 'application/grpc'], ['te', 'trailers'],
      ['x-long', 'v'.repeat(300)], ['x-octets', 'caf\u00e9 \u00ff'], ['user-agent', 'grpc-node-js/1.10'],
      ['connection', 'keep-alive'], ['te', 'gzip'], ['x-empty', ''],
    ];
    const lead = encodeHeaderBlock([[':scheme', 'http'], [':authority', 'localhost:8085']]);
    const decoded = decoder().decode(encodeHeaderBlock(fields, lead));
    expect(decoded).toEqual([
      [':scheme', 'http'], [':authority', 'localhost:8085'],
      ...fields.filter(([name, value]) => name !== 'connection' && !(name === 'te' && value === 'gzip')),
    ]);
  });
});
