/* eslint-disable no-bitwise -- the PRNG and the byte mutations are bit arithmetic */
/**
 * A small deterministic fuzzing kit: a seeded PRNG (mulberry32) and mutators for bytes and JSON text. Every run with
 * the same seed tries the same inputs, so a failure names its seed and input number and can be replayed.
 */

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
}

/** Values that break parsers: boundaries, wrong types, huge and odd strings. */
const INTERESTING_JSON = ['null', 'true', '0', '-1', '1e308', '-0', '""', '"\\u0000"', '[]', '{}', '"../../etc/passwd"',
  `"${'a'.repeat(5000)}"`, '[[[[[[[[[[]]]]]]]]]]', '{"__proto__":{"polluted":1}}', '9007199254740993', '"\\ud800"'];

/** One random edit of a byte string: flip, insert, delete, duplicate a slice, or set an interesting byte. */
export function mutateBytes(rng: Rng, input: Buffer): Buffer {
  const b = Buffer.from(input);
  const at = b.length > 0 ? rng.int(b.length) : 0;
  switch (rng.int(6)) {
    case 0:
      if (b.length > 0) b[at] ^= 1 << rng.int(8);
      return b;
    case 1: return Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at)]);
    case 2: return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(8))]);
    case 3: return Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + rng.int(32)), b.subarray(at)]);
    case 4:
      if (b.length > 0) b[at] = rng.pick([0x00, 0x7f, 0x80, 0xff, 0x0a, 0x22, 0x5c]);
      return b;
    default: return b.subarray(0, at);
  }
}

/** Mutates JSON text: byte edits, or a value somewhere replaced by an interesting one (so the result often still parses). */
export function mutateJson(rng: Rng, text: string): string {
  if (rng.int(2) === 0) return mutateBytes(rng, Buffer.from(text)).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return text;
  }
  const replace = (value: unknown, depth: number): unknown => {
    if (depth > 0 && rng.int(4) === 0) return JSON.parse(rng.pick(INTERESTING_JSON)) as unknown;
    if (Array.isArray(value)) return value.map((v) => replace(v, depth + 1));
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) if (rng.int(8) !== 0) out[rng.int(10) === 0 ? `${k}x` : k] = replace(v, depth + 1);
      return out;
    }
    return value;
  };
  return JSON.stringify(replace(doc, 0));
}

/** Errors a parser may throw for bad input; anything else (TypeError, RangeError, …) is a bug the fuzzer found. */
export function isBugError(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || !(err instanceof Error);
}
