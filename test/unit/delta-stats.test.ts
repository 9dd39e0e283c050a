import { describe, expect, it } from 'vitest';
import { statsOf } from '../../electron/engine/report/delta-stats';
import { deltaSums } from '../../electron/engine/workers/delta-task';
import { encodeFloats, normalValues } from '../fixtures/safetensors';

const SQRT2 = Math.SQRT2;

describe('delta statistics of two windows of a tensor', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const kind = dtype.toLowerCase() as 'f32' | 'f16' | 'bf16';
    it(`${dtype}: an unchanged tensor gives 0; new values of the same distribution about sqrt(2)`, () => {
      const a = encodeFloats(normalValues(1, 100_000), dtype);
      const same = statsOf(deltaSums(kind, a, a.slice()));
      expect(same).toEqual({
        relativeL2: 0,
        maxAbsChange: 0,
        changedFraction: 0,
        elements: 100_000,
        nonFinite: 0,
      });
      const b = encodeFloats(normalValues(2, 100_000), dtype);
      const moved = statsOf(deltaSums(kind, a, b));
      expect(moved.relativeL2).toBeGreaterThan(SQRT2 - 0.02);
      expect(moved.relativeL2).toBeLessThan(SQRT2 + 0.02);
      expect(moved.changedFraction).toBeGreaterThan(0.99);
      // Normal values of sd 0.02: the largest of 100,000 differences (sd 0.028) is ~4-5 sd.
      expect(moved.maxAbsChange).toBeGreaterThan(0.08);
      expect(moved.maxAbsChange).toBeLessThan(0.2);
    });
  }

  it('a small update moves the tensor by its relative size, and counts the elements it touched', () => {
    const values = normalValues(3, 10_000);
    const tuned = values.map((v, i) => (i % 10 === 0 ? v * 1.1 : v));
    const s = statsOf(deltaSums('f32', encodeFloats(values, 'F32'), encodeFloats(tuned, 'F32')));
    expect(s.changedFraction).toBeCloseTo(0.1, 2);
    // Σ(0.1 v)² over a tenth of the elements / Σ v²: 0.001, so sqrt ≈ 0.0316.
    expect(s.relativeL2).toBeCloseTo(0.0316, 2);
  });

  it('Q8_0 blocks: scale times int8, pairs compared element by element', () => {
    const block = (scaleBits: number, q: number) => {
      const b = new Uint8Array(34);
      new DataView(b.buffer).setUint16(0, scaleBits, true);
      b.fill(q & 0xff, 2);
      return b;
    };
    // 0x3c00 is 1.0 in half precision: every element 2 → 3.
    const s = statsOf(deltaSums('q8_0', block(0x3c00, 2), block(0x3c00, 3)));
    expect(s).toMatchObject({ relativeL2: 0.5, maxAbsChange: 1, changedFraction: 1, elements: 32 });
  });

  it('NaN and infinities are counted apart, not summed', () => {
    const a = new Float32Array([1, NaN, 2, Infinity]);
    const b = new Float32Array([1, NaN, 3, 1]);
    const s = statsOf(deltaSums('f32', new Uint8Array(a.buffer), new Uint8Array(b.buffer)));
    expect(s).toMatchObject({ nonFinite: 2, maxAbsChange: 1, changedFraction: 0.5 });
    expect(s.relativeL2).toBeCloseTo(Math.sqrt(1 / 5), 6);
  });

  it('refuses windows that are not the same whole elements', () => {
    expect(() => deltaSums('f32', new Uint8Array(8), new Uint8Array(6))).toThrow(/whole f32 units/);
  });
});
