import type { TensorChange } from '../../../shared/types';
import type { FileReader } from './file-reader';
import type { TensorEntry } from './formats/model-format';

/** Opens the reader of a version's file by path (undefined when the version has no such file). */
export type OpenFile = (path: string) => Promise<FileReader | undefined>;

const sameShape = (a: number[], b: number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Whether tensor `b` (in the newer file) holds the same bytes as tensor `a` (in the older one),
 * wherever each sits. Each chunk of the newer file overlapping `b` is matched against the older
 * file's chunk at the same offset from the tensor's start (for an edge chunk, which also holds a
 * neighbour's bytes, that offset lies before or across the tensor's start or end): an equal hash
 * proves the overlapping bytes equal, and a chunk inside the tensor with the same length and
 * another hash proves a difference. What no chunk settles (stretches where the cut points differ,
 * edges whose neighbour changed) is read from both files and compared byte for byte.
 */
async function sameContent(
  a: TensorEntry,
  b: TensorEntry,
  older: FileReader,
  newer: FileReader,
): Promise<boolean> {
  const length = b.end - b.start;
  const unsettled: [number, number][] = []; // relative ranges still to compare
  let cursor = 0;
  const chunks = newer.manifest.chunks;
  for (let i = newer.chunkAt(b.start); i < chunks.length; i++) {
    const start = newer.starts[i] as number;
    const chunk = chunks[i] as { hash: string; length: number };
    if (start >= b.end) break;
    if (start + chunk.length <= b.start) continue;
    const rel = start - b.start;
    const k = a.start + rel >= 0 ? older.chunkStartingAt(a.start + rel) : undefined;
    const other = k === undefined ? undefined : older.manifest.chunks[k];
    if (!other || other.length !== chunk.length) continue;
    const inside = rel >= 0 && rel + chunk.length <= length;
    if (other.hash !== chunk.hash) {
      if (inside) return false;
      continue;
    }
    const from = Math.max(0, rel);
    if (from > cursor) unsettled.push([cursor, from]);
    cursor = Math.min(length, rel + chunk.length);
  }
  if (cursor < length) unsettled.push([cursor, length]);
  for (const [from, to] of unsettled) {
    const [x, y] = await Promise.all([
      older.read(a.start + from, a.start + to),
      newer.read(b.start + from, b.start + to),
    ]);
    if (!x.equals(y)) return false;
  }
  return true;
}

export function describeTensor(t: TensorEntry, status: TensorChange['status']): TensorChange {
  const change: TensorChange = {
    name: t.name,
    status,
    dtype: t.dtype,
    shape: t.shape,
    bytes: t.end - t.start,
    offset: t.start,
  };
  if (t.file !== undefined) change.file = t.file;
  if (t.storage !== undefined) change.storage = t.storage;
  return change;
}

/** Same bytes? Read from the files holding them; where a side's file is missing, same place. */
async function sameBytes(
  o: TensorEntry,
  t: TensorEntry,
  older: { open: OpenFile; path: string },
  newer: { open: OpenFile; path: string },
) {
  const [x, y] = await Promise.all([
    older.open(o.file ?? older.path),
    newer.open(t.file ?? newer.path),
  ]);
  if (!x || !y || x === y)
    return (
      (!x || !y ? !x && !y : true) && o.file === t.file && o.start === t.start && o.end === t.end
    );
  return sameContent(o, t, x, y);
}

/**
 * Tensor by tensor: the newer table against the older one. A tensor is added, removed, modified
 * (retyped: a new dtype, such as a new quantization; reshaped; or new bytes) or unchanged.
 */
export async function compareTensorTables(
  newTable: TensorEntry[],
  oldTable: TensorEntry[],
  newer: { open: OpenFile; path: string },
  older: { open: OpenFile; path: string },
): Promise<TensorChange[]> {
  const oldByName = new Map(oldTable.map((t) => [t.name, t]));
  const changes: TensorChange[] = [];
  for (const t of newTable) {
    const o = oldByName.get(t.name);
    if (!o) {
      changes.push(describeTensor(t, 'added'));
      continue;
    }
    const retyped = o.dtype !== t.dtype;
    const reshaped = !sameShape(o.shape, t.shape);
    if (retyped || reshaped) {
      const change = describeTensor(t, 'modified');
      change.changes = [
        ...(retyped ? ['retyped' as const] : []),
        ...(reshaped ? ['reshaped' as const] : []),
      ];
      change.before = { dtype: o.dtype, shape: o.shape, bytes: o.end - o.start };
      changes.push(change);
    } else if (o.end - o.start !== t.end - t.start || !(await sameBytes(o, t, older, newer))) {
      changes.push({ ...describeTensor(t, 'modified'), changes: ['content'] });
    } else changes.push(describeTensor(t, 'unchanged'));
  }
  const newNames = new Set(newTable.map((t) => t.name));
  for (const o of oldTable) if (!newNames.has(o.name)) changes.push(describeTensor(o, 'removed'));
  return changes;
}
