import {
  dedupPhrase,
  formatBytes,
  formatRatio,
  formatRequests,
  formatUsd,
  formatUtc,
  plural,
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
export const when = (iso: string) => new Date(iso).toLocaleString();
export const percent = (part: number, whole: number) =>
  whole > 0 ? `${Math.round((100 * part) / whole)}%` : '0%';
