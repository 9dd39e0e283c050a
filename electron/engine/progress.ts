/** A rate means something once measured over this long... */
const ETA_AFTER_MS = 1000;
/** ...and over this share of the work (or 64 MiB, whichever is less). */
const ETA_AFTER_SHARE = 0.01;
const ETA_AFTER_BYTES = 64 * 1024 * 1024;

/**
 * Throttled progress for long work: calls `report` at most every `intervalMs` (and when forced),
 * after filling in the rate and the time left from the bytes done so far. The time left stays
 * null until the rate is measured over a second and a share of the work: a rate from the first
 * few bytes (before the workers are up) gave estimates of days.
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
    const measured =
      seconds * 1000 >= ETA_AFTER_MS &&
      done > 0 &&
      done >= Math.min(totalBytes * ETA_AFTER_SHARE, ETA_AFTER_BYTES);
    progress.etaSeconds = measured ? Math.round(((totalBytes - done) / done) * seconds) : null;
    report({ ...progress });
  };
}
