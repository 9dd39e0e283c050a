/**
 * Delta statistics of two windows of a tensor's elements (the older and the newer version's bytes
 * at the same element positions): the partial sums the report adds up window by window. Pure and
 * synchronous; the workers run it so the main thread never stalls on a big tensor.
 */

/** Element encodings read, by the names the formats use for them. */
export type ElementKind = 'f32' | 'f16' | 'bf16' | 'f64' | 'q8_0';

const KIND_BY_DTYPE: Record<string, ElementKind> = {
  // safetensors, GGUF
  F32: 'f32',
  F16: 'f16',
  BF16: 'bf16',
  F64: 'f64',
  Q8_0: 'q8_0',
  // ONNX
  FLOAT: 'f32',
  FLOAT16: 'f16',
  BFLOAT16: 'bf16',
  DOUBLE: 'f64',
  // PyTorch
  float32: 'f32',
  float16: 'f16',
  bfloat16: 'bf16',
  float64: 'f64',
};

/** The element encoding of a dtype, or undefined when its statistics are not computed. */
export const elementKind = (dtype: string): ElementKind | undefined => KIND_BY_DTYPE[dtype];

/** Bytes of one unit read whole (an element; a Q8_0 block of 32), and the elements it holds. */
export const UNIT: Record<ElementKind, { bytes: number; elements: number }> = {
  f32: { bytes: 4, elements: 1 },
  f16: { bytes: 2, elements: 1 },
  bf16: { bytes: 2, elements: 1 },
  f64: { bytes: 8, elements: 1 },
  q8_0: { bytes: 34, elements: 32 },
};

export interface DeltaSums {
  /** Σ a² and Σ (b − a)² over finite pairs. */
  sumSquaresBefore: number;
  sumSquaresDelta: number;
  maxAbsChange: number;
  /** Elements whose value differs (bit for bit: -0 and 0 differ, a NaN that stays NaN does not). */
  changed: number;
  elements: number;
  /** Pairs where either side is NaN or infinite: counted, left out of the sums. */
  nonFinite: number;
}

export const emptySums = (): DeltaSums => ({
  sumSquaresBefore: 0,
  sumSquaresDelta: 0,
  maxAbsChange: 0,
  changed: 0,
  elements: 0,
  nonFinite: 0,
});

export function addSums(into: DeltaSums, part: DeltaSums): DeltaSums {
  into.sumSquaresBefore += part.sumSquaresBefore;
  into.sumSquaresDelta += part.sumSquaresDelta;
  into.maxAbsChange = Math.max(into.maxAbsChange, part.maxAbsChange);
  into.changed += part.changed;
  into.elements += part.elements;
  into.nonFinite += part.nonFinite;
  return into;
}

let halfTable: Float32Array | undefined;

/** Every half-precision value, by its bits (256 KiB, built once per thread). */
function halves(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    halfTable[h] =
      exponent === 0
        ? sign * 2 ** -14 * (fraction / 1024)
        : exponent === 31
          ? fraction
            ? NaN
            : sign * Infinity
          : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return halfTable;
}

/** The window's elements as float64 values (a copy for f16, bf16 and q8_0). */
function decode(kind: ElementKind, bytes: Uint8Array): Float64Array | Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(bytes.byteLength / UNIT[kind].bytes) * UNIT[kind].elements;
  switch (kind) {
    case 'f32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'f64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case 'f16': {
      const table = halves();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(i * 2, true)]!;
      return out;
    }
    case 'bf16': {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
    case 'q8_0': {
      const table = halves();
      const out = new Float32Array(n);
      for (let block = 0; block < n / 32; block++) {
        const at = block * 34;
        const scale = table[view.getUint16(at, true)]!;
        for (let j = 0; j < 32; j++) out[block * 32 + j] = scale * view.getInt8(at + 2 + j);
      }
      return out;
    }
  }
}

/** The partial sums of two windows of the same elements (same length, whole units). */
export function deltaSums(kind: ElementKind, before: Uint8Array, after: Uint8Array): DeltaSums {
  if (before.byteLength !== after.byteLength || before.byteLength % UNIT[kind].bytes !== 0)
    throw new Error(
      `delta statistics: windows of ${before.byteLength} and ${after.byteLength} bytes are not the same whole ${kind} units`,
    );
  const a = decode(kind, before);
  const b = decode(kind, after);
  const sums = emptySums();
  sums.elements = a.length;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      sums.nonFinite++;
      if (!Object.is(x, y)) sums.changed++;
      continue;
    }
    const d = y - x;
    sums.sumSquaresBefore += x * x;
    sums.sumSquaresDelta += d * d;
    if (d !== 0 || !Object.is(x, y)) sums.changed++;
    const abs = Math.abs(d);
    if (abs > sums.maxAbsChange) sums.maxAbsChange = abs;
  }
  return sums;
}
