import { GEAR_HI, GEAR_LO } from './gear';
import { cutBits, validateParams, type ChunkingParams } from './params';
import type { CutScanner } from './scanner';

/**
 * The plain TypeScript scanner: the reference the WebAssembly fast path is tested against. The
 * 64-bit hash is kept as two 32-bit halves. Every cut test needs only the high half, because a
 * cut asks for at least `large` (>= 1) zero bits at the top.
 */
export class ReferenceScanner implements CutScanner {
  private pos = 0;
  private hi = 0;
  private lo = 0;
  private readonly shiftSmall: number;
  private readonly shiftLarge: number;

  constructor(readonly params: ChunkingParams) {
    validateParams(params);
    const bits = cutBits(params);
    this.shiftSmall = 32 - bits.small;
    this.shiftLarge = 32 - bits.large;
  }

  reset(): void {
    this.pos = this.hi = this.lo = 0;
  }

  push(data: Uint8Array): number[] {
    const { minSize, avgSize, maxSize } = this.params;
    const cuts: number[] = [];
    let { pos, hi, lo } = this;
    let i = 0;
    const end = data.length;
    while (i < end) {
      if (pos < minSize) {
        const step = Math.min(minSize - pos, end - i);
        pos += step;
        i += step;
        continue;
      }
      const byte = data[i++] as number;
      // hash = (hash << 1) + GEAR[byte], in 32-bit halves.
      const gLo = GEAR_LO[byte] as number;
      const shiftedLo = (lo << 1) >>> 0;
      hi = (((hi << 1) | (lo >>> 31)) + (GEAR_HI[byte] as number)) >>> 0;
      lo = (shiftedLo + gLo) >>> 0;
      if (lo < gLo) hi = (hi + 1) >>> 0;
      pos++;
      const shift = pos <= avgSize ? this.shiftSmall : this.shiftLarge;
      if (hi >>> shift === 0 || pos === maxSize) {
        cuts.push(i);
        pos = hi = lo = 0;
      }
    }
    this.pos = pos;
    this.hi = hi;
    this.lo = lo;
    return cuts;
  }
}
