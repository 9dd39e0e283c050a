/** Sizes for people: binary units (KiB, MiB, GiB), two or three significant digits. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** A dedup ratio: "10.96x", "2081x". */
export function formatRatio(ratio: number): string {
  return `${ratio.toFixed(ratio >= 100 ? 0 : 2)}x`;
}

/** A moment for people, in UTC: "2026-11-30 14:05:01 UTC". */
export function formatUtc(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}
