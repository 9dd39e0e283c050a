import { afterEach, describe, expect, it, vi } from 'vitest';
import { throttledProgress } from '../../electron/engine/progress';

describe('progress: rate and time left', () => {
  afterEach(() => vi.restoreAllMocks());

  it('gives no time left until the rate is measured over a second and a share of the work', () => {
    let now = 1_000;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const total = 10 * 1024 ** 3;
    const progress = { done: 0, mbps: 0, etaSeconds: null as number | null };
    const seen: (number | null)[] = [];
    const emit = throttledProgress(
      progress,
      total,
      (p) => p.done,
      (p) => seen.push(p.etaSeconds),
    );
    // The first frames: a few bytes after a few milliseconds (a rate that means nothing).
    now += 50;
    progress.done = 4096;
    emit(true);
    now += 400;
    progress.done = 8 * 1024 ** 2;
    emit(true);
    expect(seen).toEqual([null, null]);
    // After a second at ~1 GB/s: ~9 s left.
    now += 600;
    progress.done = 1024 ** 3;
    emit(true);
    expect(seen.at(-1)).toBe(9);
  });
});
