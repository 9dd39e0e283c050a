import {
  dedupPhrase,
  formatBytes,
  formatRatio,
  formatRequests,
  formatUsd,
  formatUtc,
  plural,
  restoreSummary,
} from '../../shared/format';

export const bytes = formatBytes;
export const ratio = formatRatio;
export const requests = formatRequests;
export const usd = formatUsd;
/** "dedup 3.21x", or "dedup: nothing new". */
export const dedup = dedupPhrase;
/** "1 chunk", "2 chunks". */
export const count = plural;
export const utc = formatUtc;
/** What a restore did, in one line (as `tv pull` says it). */
export const restored = restoreSummary;
export const when = (iso: string) => new Date(iso).toLocaleString();
export const percent = (part: number, whole: number) =>
  whole > 0 ? `${Math.round((100 * part) / whole)}%` : '0%';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/**
 * Round ticks for an axis of bytes: from 0 to at least `max`, in steps of 1, 2, 2.5 or 5 times a
 * power of ten of one binary unit (0, 100, 200, 300 MiB; never 143.1 MiB), about `target` of them.
 */
export function byteTicks(max: number, target = 4): number[] {
  if (!(max > 0)) return [0, 1];
  let unit = 1;
  while (max / unit >= 1024 && unit < 1024 ** 4) unit *= 1024;
  const raw = max / unit / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    ticks.push(Number((i * step).toPrecision(12)) * unit);
    if (i * step * unit >= max) return ticks;
  }
}

/** A tick's label: "0", "512 KiB", "1.5 MiB", "300 MiB" (no trailing zeros). */
export function tickBytes(value: number): string {
  if (value === 0) return '0';
  let unit = 0;
  let v = value;
  while (v >= 1024 && unit < UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${Number(v.toFixed(2))} ${UNITS[unit]}`;
}
