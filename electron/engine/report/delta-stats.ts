import type { TensorChange, TensorStats, TensorStatsResult } from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Repository, VersionEntry } from '../repository/repository';
import { addSums, elementKind, emptySums, UNIT, type DeltaSums } from '../workers/delta-task';
import type { ChunkHashPool } from '../workers/pool';
import type { TensorEntry } from './formats/model-format';
import { readLayouts, VersionFiles } from './model-files';

/** Bytes of each version read per window: 2 windows per worker in flight bound the memory. */
const WINDOW_BYTES = 4 * 1024 * 1024;

/** The figures a tensor's sums give (see TensorStats). */
export function statsOf(s: DeltaSums): TensorStats {
  return {
    relativeL2:
      s.sumSquaresBefore > 0
        ? Math.sqrt(s.sumSquaresDelta / s.sumSquaresBefore)
        : s.sumSquaresDelta === 0
          ? 0
          : null,
    maxAbsChange: s.maxAbsChange,
    changedFraction: s.elements > 0 ? s.changed / s.elements : 0,
    elements: s.elements,
    nonFinite: s.nonFinite,
  };
}

/** Why a tensor's statistics are not computed, or undefined when they are. */
function refusal(o: TensorEntry | undefined, t: TensorEntry | undefined): string | undefined {
  if (!t || !o) return `only in the ${t ? 'newer' : 'older'} version: nothing to compare it with`;
  if (o.dtype !== t.dtype) return `retyped ${o.dtype} → ${t.dtype}: its elements do not pair up`;
  if (o.shape.join() !== t.shape.join()) return 'reshaped: its elements do not pair up';
  const kind = elementKind(t.dtype);
  if (!kind) return `${t.dtype} elements are not read (F32, F16, BF16, F64 and Q8_0 are)`;
  if (o.end - o.start !== t.end - t.start || (t.end - t.start) % UNIT[kind].bytes !== 0)
    return `its ${t.end - t.start} bytes are not whole ${t.dtype} elements`;
  return undefined;
}

interface Window {
  name: string;
  kind: NonNullable<ReturnType<typeof elementKind>>;
  older: TensorEntry;
  newer: TensorEntry;
  from: number;
  to: number;
}

/** A tensor's windows: WINDOW_BYTES each (whole units), relative to its start. */
function windows(name: string, older: TensorEntry, newer: TensorEntry): Window[] {
  const kind = elementKind(newer.dtype)!;
  const step = Math.floor(WINDOW_BYTES / UNIT[kind].bytes) * UNIT[kind].bytes;
  const length = newer.end - newer.start;
  const out: Window[] = [];
  for (let from = 0; from < length || (from === 0 && length === 0); from += step)
    out.push({ name, kind, older, newer, from, to: Math.min(length, from + step) });
  return out;
}

/**
 * How much each named tensor of a model file moved from one version to the other: relative L2
 * change, largest absolute change, share of elements changed. Both versions' bytes are streamed
 * through their chunks (the Store) in windows of 4 MiB, never a whole large tensor at once, and
 * the sums are computed by the pool's workers.
 */
export async function tensorDeltaStats(
  repo: Repository,
  pool: ChunkHashPool,
  from: VersionEntry,
  to: VersionEntry,
  path: string,
  names: string[],
  signal?: AbortSignal,
): Promise<TensorStatsResult['tensors']> {
  const older = new VersionFiles(repo, from.record.files);
  const newer = new VersionFiles(repo, to.record.files);
  const layouts = await readLayouts(path, newer, older);
  if ('problem' in layouts) throw new Error(`no delta statistics for ${path}: ${layouts.problem}`);
  const byName = (table: TensorEntry[]) => new Map(table.map((t) => [t.name, t]));
  const [olderTable, newerTable] = [byName(layouts.older.tensors), byName(layouts.newer.tensors)];
  const results = new Map<string, TensorStatsResult['tensors'][number]>();
  const work: Window[] = [];
  for (const name of names) {
    const [o, t] = [olderTable.get(name), newerTable.get(name)];
    const skipped = !o && !t ? 'no such tensor in either version' : refusal(o, t);
    if (skipped) results.set(name, { name, skipped });
    else work.push(...windows(name, o!, t!));
  }
  const sums = new Map<string, DeltaSums>();
  await mapLimit(work, pool.size * 2, async (w) => {
    const [a, b] = await Promise.all([
      older.open(w.older.file ?? path),
      newer.open(w.newer.file ?? path),
    ]);
    if (!a || !b)
      throw new Error(`no delta statistics for ${w.name}: a file holding it is missing`);
    // Copies of their own: the workers take them whole, and the readers keep their chunks.
    const [before, after] = await Promise.all([
      a.read(w.older.start + w.from, w.older.start + w.to).then((x) => new Uint8Array(x)),
      b.read(w.newer.start + w.from, w.newer.start + w.to).then((x) => new Uint8Array(x)),
    ]);
    const part = await pool.delta({ type: 'delta', kind: w.kind, before, after }, signal);
    sums.set(w.name, addSums(sums.get(w.name) ?? emptySums(), part));
  });
  for (const [name, s] of sums) results.set(name, { name, stats: statsOf(s) });
  return names.map((n) => results.get(n)!);
}

/** The tensors "all changed" means: new bytes at the same dtype and shape. */
export const changedTensors = (tensors: TensorChange[]) =>
  tensors
    .filter((t) => t.status === 'modified' && t.changes?.every((c) => c === 'content'))
    .map((t) => t.name);
