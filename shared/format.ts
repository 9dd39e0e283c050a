import type { RestoreResult } from './types';

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

/**
 * The dedup ratio of a version, the one definition every front end shows: its logical bytes (the
 * size of its files) per byte of new chunks it stored, rounded to two decimals. 1 means every
 * byte was new; 10 means one byte in ten was. File manifests (the chunk lists) are counted apart
 * (`metadataBytes`), so a tiny version is not shown below 1. A version that stored no new chunk
 * bytes (all its chunks were stored already, or it is empty) has no ratio: null, shown as
 * "nothing new", never a figure that reads as a measurement.
 */
export function dedupRatio(logicalBytes: number, newBytes: number): number | null {
  if (newBytes <= 0) return null;
  return Math.round((logicalBytes / newBytes) * 100) / 100;
}

/**
 * A dedup ratio: "10.96x", "183x", "2,000,029x" (a version that added a few bytes to a large
 * model); "nothing new" for a version that stored no new bytes.
 */
export function formatRatio(ratio: number | null): string {
  if (ratio === null) return 'nothing new';
  return ratio >= 100 ? `${Math.round(ratio).toLocaleString('en-US')}x` : `${ratio.toFixed(2)}x`;
}

/** "dedup 3.21x", or "dedup: nothing new" for a version that stored no new bytes. */
export function dedupPhrase(ratio: number | null): string {
  return ratio === null ? 'dedup: nothing new' : `dedup ${formatRatio(ratio)}`;
}

/** A count with its noun: "1 chunk", "2 chunks", "0 files" (`nouns` for irregular plurals). */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

/** A moment for people, in UTC: "2026-11-30 14:05:01 UTC". */
export function formatUtc(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** A model format as people name it: "GGUF", "PyTorch checkpoint". */
export function formatName(format: 'safetensors' | 'gguf' | 'onnx' | 'pytorch'): string {
  return { safetensors: 'safetensors', gguf: 'GGUF', onnx: 'ONNX', pytorch: 'PyTorch checkpoint' }[
    format
  ];
}

/**
 * How a tensor changed, in words: "retyped F16 → Q8_0", "reshaped [4096, 32000] → [4096, 32001]",
 * "modified" (new bytes), or its status.
 */
export function tensorChange(t: {
  status: string;
  dtype: string;
  shape: number[];
  changes?: string[];
  before?: { dtype: string; shape: number[] };
}): string {
  const parts: string[] = [];
  if (t.changes?.includes('retyped')) parts.push(`retyped ${t.before?.dtype} → ${t.dtype}`);
  if (t.changes?.includes('reshaped'))
    parts.push(`reshaped [${t.before?.shape.join(', ')}] → [${t.shape.join(', ')}]`);
  return parts.length > 0 ? parts.join(', ') : t.status;
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

/**
 * What a restore did, in one line: "m v2: 3 files, 14.0 MiB written to DEST" into a new or empty
 * folder; into one holding files, what was already there: "m v2: 3 files, 14.0 MiB in DEST: 1
 * written, 2 already there (121 B, checked)". `took` ("0.42 s") ends the line when given.
 */
export function restoreSummary(r: RestoreResult, took?: string): string {
  const version = `${r.model} ${r.version}: ${plural(r.files, 'file')}, ${formatBytes(r.bytes)}`;
  if (r.filesUnchanged === 0 && r.bytesFromDestination === 0)
    return `${version} written to ${r.destination}${took ? ` in ${took}` : ''}`;
  const parts = [`${r.filesWritten} written`];
  if (r.filesUnchanged > 0)
    parts.push(`${r.filesUnchanged} already there (${formatBytes(r.bytesUnchanged)}, checked)`);
  if (r.bytesFromDestination > 0)
    parts.push(`${formatBytes(r.bytesFromDestination)} of chunks reused from files there`);
  return `${version} in ${r.destination}: ${parts.join(', ')}${took ? `; ${took}` : ''}`;
}
