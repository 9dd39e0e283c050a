import type { TensorChange } from '../../../shared/types';
import type { Repository } from '../repository/repository';
import type { Manifest } from '../repository/format';
import { FileReader } from './file-reader';
import { headerLength, LayoutError, parseHeader, type TensorLayout } from './safetensors';

/** The tensor layout of a safetensors file, read from the chunks holding its header only. */
export async function readLayout(reader: FileReader): Promise<TensorLayout[]> {
  const size = reader.manifest.size;
  const n = headerLength(await reader.read(0, 8), size);
  return parseHeader(await reader.read(8, 8 + n), n, size);
}

const sameShape = (a: number[], b: number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Whether tensor `b` (in the newer file) holds the same bytes as tensor `a` (in the older one),
 * wherever each sits. Chunks of `b` that lie inside it are matched by hash against chunks of `a`
 * at the same offset from the tensor's start: equal hashes prove equal bytes, and a chunk of the
 * same length with another hash proves a difference. What no chunk settles (the edges, where a
 * chunk also holds neighbouring bytes, and stretches where the cut points differ) is read from
 * both files and compared byte for byte.
 */
async function sameContent(
  a: TensorLayout,
  b: TensorLayout,
  older: FileReader,
  newer: FileReader,
  olderChunkAt: Map<number, number>,
): Promise<boolean> {
  const length = b.end - b.start;
  const unsettled: [number, number][] = []; // relative ranges still to compare
  let cursor = 0;
  const chunks = newer.manifest.chunks;
  for (let i = 0; i < chunks.length; i++) {
    const start = newer.starts[i] as number;
    const chunk = chunks[i] as { hash: string; length: number };
    if (start + chunk.length <= b.start) continue;
    if (start >= b.end) break;
    if (start < b.start || start + chunk.length > b.end) continue; // an edge chunk: compare bytes
    const rel = start - b.start;
    const k = olderChunkAt.get(a.start + rel);
    const other = k === undefined ? undefined : older.manifest.chunks[k];
    if (other && other.length === chunk.length) {
      if (other.hash !== chunk.hash) return false;
      if (rel > cursor) unsettled.push([cursor, rel]);
      cursor = rel + chunk.length;
    }
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

/** Tensor by tensor: the newer file against the older one (or every tensor added when none). */
export async function compareTensors(
  repo: Repository,
  newer: Manifest,
  older: Manifest | undefined,
): Promise<{ tensors?: TensorChange[]; note?: string }> {
  const newReader = new FileReader(repo, newer);
  let newLayout: TensorLayout[];
  try {
    newLayout = await readLayout(newReader);
  } catch (err) {
    if (err instanceof LayoutError)
      return {
        note: `safetensors header unreadable (${err.message}): compared at chunk level only`,
      };
    throw err;
  }
  const describe = (t: TensorLayout, status: TensorChange['status']): TensorChange => ({
    name: t.name,
    status,
    dtype: t.dtype,
    shape: t.shape,
    bytes: t.end - t.start,
  });
  if (!older) return { tensors: newLayout.map((t) => describe(t, 'added')) };
  const oldReader = new FileReader(repo, older);
  let oldLayout: TensorLayout[];
  try {
    oldLayout = await readLayout(oldReader);
  } catch (err) {
    if (err instanceof LayoutError) {
      return {
        tensors: newLayout.map((t) => describe(t, 'added')),
        note: `the older file's safetensors header is unreadable (${err.message})`,
      };
    }
    throw err;
  }
  const olderChunkAt = new Map<number, number>(oldReader.starts.map((s, i) => [s, i]));
  const oldByName = new Map(oldLayout.map((t) => [t.name, t]));
  const changes: TensorChange[] = [];
  for (const t of newLayout) {
    const o = oldByName.get(t.name);
    if (!o) changes.push(describe(t, 'added'));
    else if (
      o.dtype !== t.dtype ||
      !sameShape(o.shape, t.shape) ||
      o.end - o.start !== t.end - t.start
    )
      changes.push(describe(t, 'modified'));
    else
      changes.push(
        describe(
          t,
          (await sameContent(o, t, oldReader, newReader, olderChunkAt)) ? 'unchanged' : 'modified',
        ),
      );
  }
  const newNames = new Set(newLayout.map((t) => t.name));
  for (const o of oldLayout) if (!newNames.has(o.name)) changes.push(describe(o, 'removed'));
  return { tensors: changes };
}
