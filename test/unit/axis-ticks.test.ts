import { describe, expect, it } from 'vitest';
import { byteTicks, tickBytes } from '../../renderer/src/format';

const MiB = 1024 * 1024;

describe('round ticks for byte axes', () => {
  it('falls on round figures of one unit, from 0 past the largest value', () => {
    // The values that gave ticks at 143.1 and 286.1 MiB before.
    expect(byteTicks(286.1 * MiB).map(tickBytes)).toEqual(['0', '100 MiB', '200 MiB', '300 MiB']);
    expect(byteTicks(7.63 * MiB).map(tickBytes)).toEqual(['0', '2 MiB', '4 MiB', '6 MiB', '8 MiB']);
    expect(byteTicks(1.2 * 1024 * MiB).map(tickBytes)).toEqual([
      '0',
      '512 MiB',
      '1 GiB',
      '1.5 GiB',
    ]);
    expect(byteTicks(50).map(tickBytes)).toEqual(['0', '20 B', '40 B', '60 B']);
  });

  it('an empty chart still has an axis', () => {
    expect(byteTicks(0)).toEqual([0, 1]);
  });
});
