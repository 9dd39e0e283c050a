import { describe, expect, it } from 'vitest';
import { dedupPhrase, dedupRatio, formatRatio } from '../../shared/format';

describe('dedup ratios as people read them', () => {
  it('two decimals below 100, whole numbers grouped by thousands above, "nothing new" without new bytes', () => {
    expect(formatRatio(dedupRatio(1000, 1000))).toBe('1.00x');
    expect(formatRatio(dedupRatio(1096, 100))).toBe('10.96x');
    expect(formatRatio(dedupRatio(18_300, 100))).toBe('183x');
    // A version that added 8 bytes to a 15.3 MiB model.
    expect(formatRatio(dedupRatio(16_000_232, 8))).toBe('2,000,029x');
    expect(formatRatio(dedupRatio(1000, 0))).toBe('nothing new');
    expect(dedupPhrase(dedupRatio(2081, 1))).toBe('dedup 2,081x');
    expect(dedupPhrase(null)).toBe('dedup: nothing new');
  });
});
