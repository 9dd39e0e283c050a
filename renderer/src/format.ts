import { formatBytes, formatRatio, formatRequests, formatUsd } from '../../shared/format';

export const bytes = formatBytes;
export const ratio = formatRatio;
export const requests = formatRequests;
export const usd = formatUsd;
export const when = (iso: string) => new Date(iso).toLocaleString();
export const percent = (part: number, whole: number) =>
  whole > 0 ? `${Math.round((100 * part) / whole)}%` : '0%';
