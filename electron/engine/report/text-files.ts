import { structuredPatch } from 'diff';
import type { MetadataChange, TextDiff } from '../../../shared/types';
import type { VersionFiles } from './model-files';

/** Text files compared line by line (JSON key by key), at most this big on either side. */
export const MAX_TEXT_BYTES = 1024 * 1024;
const TEXT_EXTENSIONS = [
  '.json',
  '.yaml',
  '.yml',
  '.txt',
  '.md',
  '.toml',
  '.cfg',
  '.ini',
  '.jinja',
];
/** Lines shown of a line diff, key paths of a JSON diff; the rest are counted. */
const MAX_LINES = 2000;
const MAX_KEYS = 500;
const MAX_VALUE = 120;

const isTextPath = (path: string) => TEXT_EXTENSIONS.some((e) => path.toLowerCase().endsWith(e));

/** The file's text, or undefined when it is not UTF-8 text (a NUL, or invalid sequences). */
async function readText(files: VersionFiles, path: string): Promise<string | undefined> {
  const reader = await files.open(path);
  if (!reader || reader.size > MAX_TEXT_BYTES) return undefined;
  const bytes = await reader.read(0, reader.size);
  if (bytes.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const child = (path: string, key: string) =>
  /^[A-Za-z_$][\w$]*$/.test(key)
    ? path
      ? `${path}.${key}`
      : key
    : `${path}[${JSON.stringify(key)}]`;

/**
 * Two JSON values key by key: each key path whose value differs, was added or removed (objects
 * by key, arrays by index). Key order and formatting are not differences.
 */
export function compareJson(
  before: unknown,
  after: unknown,
  path = '',
  out: MetadataChange[] = [],
) {
  if (isObject(before) && isObject(after)) {
    for (const key of Object.keys(after)) {
      const at = child(path, key);
      if (!Object.hasOwn(before, key))
        out.push({ key: at, status: 'added', value: show(after[key]) });
      else compareJson(before[key], after[key], at, out);
    }
    for (const key of Object.keys(before))
      if (!Object.hasOwn(after, key))
        out.push({ key: child(path, key), status: 'removed', before: show(before[key]) });
    return out;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    for (let i = 0; i < Math.max(before.length, after.length); i++) {
      const at = `${path}[${i}]`;
      if (i >= before.length) out.push({ key: at, status: 'added', value: show(after[i]) });
      else if (i >= after.length) out.push({ key: at, status: 'removed', before: show(before[i]) });
      else compareJson(before[i], after[i], at, out);
    }
    return out;
  }
  if (JSON.stringify(before) !== JSON.stringify(after))
    out.push({
      key: path || '(the whole value)',
      status: 'modified',
      before: show(before),
      value: show(after),
    });
  return out;
}

function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/** A unified line diff (3 lines of context), cut at MAX_LINES lines. */
function lineDiff(before: string, after: string): TextDiff {
  const { hunks } = structuredPatch('a', 'b', before, after, '', '', { context: 3 });
  const shown: TextDiff['hunks'] = [];
  let lines = 0;
  let left = 0;
  for (const h of hunks) {
    const changed = h.lines.filter((l) => l[0] === '+' || l[0] === '-').length;
    if (lines >= MAX_LINES) {
      left += changed;
      continue;
    }
    shown.push({ oldStart: h.oldStart, newStart: h.newStart, lines: h.lines });
    lines += h.lines.length;
  }
  return { kind: 'lines', hunks: shown, ...(left > 0 ? { truncated: left } : {}) };
}

/**
 * A small text file of two versions compared: JSON key by key (when both sides parse), any other
 * text line by line. Undefined for files that are not text, or bigger than MAX_TEXT_BYTES.
 */
export async function compareTextFile(
  path: string,
  newer: VersionFiles,
  older: VersionFiles,
): Promise<TextDiff | undefined> {
  if (!isTextPath(path)) return undefined;
  const [after, before] = await Promise.all([readText(newer, path), readText(older, path)]);
  if (after === undefined || before === undefined) return undefined;
  if (path.toLowerCase().endsWith('.json')) {
    const [a, b] = [parseJson(before), parseJson(after)];
    if (a && b) {
      const keys = compareJson(a.value, b.value);
      return {
        kind: 'json',
        keys: keys.slice(0, MAX_KEYS),
        ...(keys.length > MAX_KEYS ? { truncated: keys.length - MAX_KEYS } : {}),
      };
    }
  }
  return lineDiff(before, after);
}
