/** Deterministic bytes from a seed (xorshift32), for golden vectors and property tests. */
export function seededBytes(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = x >>> 24;
  }
  for (; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Structured input: random, a run of zeros, repeated text, random again. */
export function mixedBytes(seed: number, length: number): Uint8Array {
  const out = seededBytes(seed, length);
  const quarter = Math.floor(length / 4);
  out.fill(0, quarter, 2 * quarter);
  const text = new TextEncoder().encode(
    '{"dtype":"F16","shape":[4096,4096],"data_offsets":[0,33554432]},',
  );
  for (let i = 2 * quarter; i < 3 * quarter; i++) out[i] = text[i % text.length] as number;
  return out;
}

/** A small seeded random number generator for choosing sizes and positions. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}
