import { formatBytes, formatRatio } from '../../shared/format';

export const bytes = formatBytes;
export const ratio = formatRatio;
export const when = (iso: string) => new Date(iso).toLocaleString();
export const percent = (part: number, whole: number) =>
  whole > 0 ? `${Math.round((100 * part) / whole)}%` : '0%';
