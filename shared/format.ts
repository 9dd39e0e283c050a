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

/** Requests by kind, most first: "66 PUT, 2 LIST, 1 GET" ("no requests" when there were none). */
export function formatRequests(requests: object): string {
  const parts = (Object.entries(requests) as [string, number][])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${n} ${kind.toUpperCase()}`);
  const total = (Object.values(requests) as number[]).reduce((a, b) => a + b, 0);
  return parts.length === 0
    ? 'no requests'
    : `${total} request${total === 1 ? '' : 's'} (${parts.join(', ')})`;
}

/** A dollar figure of at least two significant digits: "0.00034", "1.20". */
export function formatUsd(usd: number): string {
  if (usd === 0) return '0';
  if (usd >= 1) return usd.toFixed(2);
  return usd
    .toPrecision(2)
    .replace(/(\.\d*?)0+$/, '$1')
    .replace(/\.$/, '');
}
