/**
 * Throttled progress for long work: calls `report` at most every `intervalMs` (and when forced),
 * after filling in the rate and the time left from the bytes done so far.
 */
export function throttledProgress<P extends { mbps: number; etaSeconds: number | null }>(
  progress: P,
  totalBytes: number,
  bytesDone: (p: P) => number,
  report: ((p: P) => void) | undefined,
  intervalMs = 100,
): (force?: boolean) => void {
  const started = performance.now();
  let last = 0;
  return (force = false) => {
    const now = performance.now();
    if (!report || (!force && now - last < intervalMs)) return;
    last = now;
    const seconds = (now - started) / 1000;
    const done = bytesDone(progress);
    progress.mbps = seconds > 0 ? Math.round(done / 1e6 / seconds) : 0;
    progress.etaSeconds = done > 0 ? Math.round(((totalBytes - done) / done) * seconds) : null;
    report({ ...progress });
  };
}
