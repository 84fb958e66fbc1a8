/* eslint-disable no-bitwise -- HTTP/2 frames and HPACK are bit fields */
/**
 * The HPACK Huffman code (RFC 7541 Appendix B), decode only: this client never Huffman-encodes. The code is
 * canonical, so the bit length of each of the 257 symbols (256 octets + EOS) defines it completely; the lengths are
 * kept below, one letter per symbol, 'A' meaning 5 bits, 'B' 6 bits, and so on up to 'Z' for 30 bits.
 */
const LENGTHS = 'ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBBAB'
  + 'CBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTP'
  + 'QRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ';

const EOS = 256;

/** Decoding tree: node i has children zero[i] and one[i] (0 until built: the root is nobody's child); a negative child is a leaf holding symbol -child - 1. */
const zero: number[] = [0];
const one: number[] = [0];

function buildTree(): void {
  const lengths = Array.from(LENGTHS, (c) => c.charCodeAt(0) - 'A'.charCodeAt(0) + 5);
  if (lengths.length !== EOS + 1) throw new Error('HPACK Huffman table must have 257 lengths');
  const symbols = lengths.map((_, s) => s).sort((a, b) => lengths[a] - lengths[b] || a - b);
  let code = 0;
  let previous = lengths[symbols[0]];
  for (const symbol of symbols) {
    code *= 2 ** (lengths[symbol] - previous);
    previous = lengths[symbol];
    let node = 0;
    for (let bit = lengths[symbol] - 1; bit >= 0; bit--) {
      const branch = Math.floor(code / 2 ** bit) % 2 === 1 ? one : zero;
      if (bit === 0) {
        branch[node] = -symbol - 1;
      } else {
        if (branch[node] === 0) {
          branch[node] = zero.length;
          zero.push(0);
          one.push(0);
        }
        node = branch[node];
      }
    }
    code++;
  }
}
buildTree();

/** Decodes a Huffman-coded string literal; throws on EOS or bad padding. */
export function huffmanDecode(input: Buffer, start: number, end: number): string {
  const out: number[] = [];
  let node = 0;
  // Bits read since the last complete symbol, and whether all of them were 1s (valid padding is a prefix of EOS).
  let pending = 0;
  let allOnes = true;
  for (let i = start; i < end; i++) {
    const byte = input[i];
    for (let bit = 7; bit >= 0; bit--) {
      const set = (byte >> bit) & 1;
      const next = set ? one[node] : zero[node];
      pending++;
      allOnes &&= set === 1;
      if (next < 0) {
        const symbol = -next - 1;
        if (symbol === EOS) throw new Error('HPACK: EOS symbol inside a Huffman string');
        out.push(symbol);
        node = 0;
        pending = 0;
        allOnes = true;
      } else {
        // The code is complete (every bit string is a prefix of some code), so a branch always exists.
        node = next;
      }
    }
  }
  if (pending > 7 || !allOnes) throw new Error('HPACK: invalid Huffman padding');
  return Buffer.from(out).toString('latin1');
}
