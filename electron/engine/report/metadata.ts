import type { MetadataChange } from '../../../shared/types';
import type { GraphNode, MetadataValue } from './formats/model-format';

const MAX_TEXT = 120;
const SHOWN_ITEMS = 4;

const isScalar = (v: MetadataValue) => !Array.isArray(v);

function text(v: MetadataValue): string {
  if (typeof v !== 'string') return String(v);
  const oneLine = v.replace(/\n/g, '\\n');
  return oneLine.length > MAX_TEXT
    ? `${oneLine.slice(0, MAX_TEXT - 20)}… (${v.length.toLocaleString('en-US')} characters)`
    : oneLine;
}

function itemKind(items: MetadataValue[]): string {
  const kinds = new Set(
    items.map((v) =>
      Array.isArray(v)
        ? 'arrays'
        : typeof v === 'string'
          ? 'strings'
          : typeof v === 'boolean'
            ? 'booleans'
            : 'numbers',
    ),
  );
  return kinds.size === 1 ? [...kinds][0]! : 'items';
}

/** A value for display: short ones whole, long strings cut, long arrays as a count and the first items. */
export function summarize(v: MetadataValue): string {
  if (!Array.isArray(v)) return text(v);
  const show = (items: MetadataValue[]) =>
    items.map((x) =>
      typeof x === 'string'
        ? JSON.stringify(text(x))
        : Array.isArray(x)
          ? `[${x.length} items]`
          : text(x),
    );
  if (v.length <= SHOWN_ITEMS * 2 && v.every(isScalar) && show(v).join(', ').length <= MAX_TEXT)
    return `[${show(v).join(', ')}]`;
  return `[${v.length.toLocaleString('en-US')} ${itemKind(v)}: ${show(v.slice(0, SHOWN_ITEMS)).join(', ')}, …]`;
}

function same(a: MetadataValue, b: MetadataValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++)
      if (!same(a[i] as MetadataValue, b[i] as MetadataValue)) return false;
    return true;
  }
  return (
    a === b ||
    (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b))
  );
}

/** What differs inside two arrays: how many items, where the first one is, and the lengths. */
function arrayDetail(a: MetadataValue[], b: MetadataValue[]): string {
  let differ = 0;
  let first = -1;
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    if (!same(a[i] as MetadataValue, b[i] as MetadataValue)) {
      differ++;
      if (first < 0) first = i;
    }
  const n = (x: number) => x.toLocaleString('en-US');
  const parts: string[] = [];
  if (differ > 0) {
    const item = (v: MetadataValue) => summarize([v]).slice(1, -1);
    parts.push(
      `${n(differ)} of ${n(Math.min(a.length, b.length))} items differ, the first at index ${n(first)}: ${item(a[first] as MetadataValue)} → ${item(b[first] as MetadataValue)}`,
    );
  }
  if (a.length !== b.length) parts.push(`${n(a.length)} → ${n(b.length)} items`);
  return parts.join('; ');
}

/** Key by key: the newer file's metadata against the older one's (every key added when none). */
export function compareMetadata(
  newer: Map<string, MetadataValue>,
  older: Map<string, MetadataValue> | undefined,
): MetadataChange[] {
  const changes: MetadataChange[] = [];
  for (const [key, value] of newer) {
    const before = older?.get(key);
    if (!older || before === undefined)
      changes.push({ key, status: 'added', value: summarize(value) });
    else if (same(before, value))
      changes.push({ key, status: 'unchanged', value: summarize(value) });
    else {
      const change: MetadataChange = {
        key,
        status: 'modified',
        value: summarize(value),
        before: summarize(before),
      };
      if (Array.isArray(value) && Array.isArray(before)) change.detail = arrayDetail(before, value);
      changes.push(change);
    }
  }
  for (const [key, value] of older ?? [])
    if (!newer.has(key)) changes.push({ key, status: 'removed', before: summarize(value) });
  return changes;
}

/**
 * Nodes of two graphs: matched by name (unnamed ones by content); changed when a name's encoding
 * differs. Undefined when nothing differs.
 */
export function compareNodes(newer: GraphNode[], older: GraphNode[]): string | undefined {
  const named = (nodes: GraphNode[]) =>
    new Map(nodes.filter((n) => n.name).map((n) => [n.name, n.digest]));
  const a = named(older);
  const b = named(newer);
  let changed = 0;
  let added = 0;
  let removed = 0;
  for (const [name, digest] of b) {
    if (!a.has(name)) added++;
    else if (a.get(name) !== digest) changed++;
  }
  for (const name of a.keys()) if (!b.has(name)) removed++;
  const unnamed = new Map<string, number>();
  for (const n of older) if (!n.name) unnamed.set(n.digest, (unnamed.get(n.digest) ?? 0) + 1);
  for (const n of newer) {
    if (n.name) continue;
    const left = unnamed.get(n.digest) ?? 0;
    if (left > 0) unnamed.set(n.digest, left - 1);
    else added++;
  }
  for (const left of unnamed.values()) removed += left;
  if (changed + added + removed === 0) return undefined;
  return `${changed} changed, ${added} added, ${removed} removed`;
}
