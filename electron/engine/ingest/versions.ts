import type { PushStatus, StatusFile } from '../../../shared/types';
import type { VersionRecord } from '../repository/format';
import type { Ingested } from './push';

type Files = VersionRecord['files'];

/** An update that cannot be made: the message says which path and what to do. */
export class UpdateError extends Error {
  override name = 'UpdateError';
}

/** Whether `path` is `target` or lies in the folder `target`. */
function under(path: string, target: string): boolean {
  return path === target || path.startsWith(`${target}/`);
}

/** Orders files by path, code unit by code unit, as a version records them. */
export const inPathOrder = (a: { path: string }, b: { path: string }): number =>
  a.path < b.path ? -1 : a.path > b.path ? 1 : 0;

/**
 * The files of an update: the parent's, without those `remove` names (a file, or a folder and
 * everything in it), with `given` added or replacing the parent's file of the same path; in path
 * order. A removal that matches nothing, or a path both given and removed, is refused before
 * anything is read (`parentLabel` names the parent in the message).
 */
export function updatedFiles(
  parent: Files,
  given: Files,
  remove: readonly string[],
  parentLabel?: string,
): Files {
  const targets = remove.map((r) => r.replace(/^\.\/+/, '').replace(/\/+$/, ''));
  for (const target of targets) {
    if (!parent.some((f) => under(f.path, target)))
      throw new UpdateError(
        parentLabel
          ? `nothing to remove at "${target}": ${parentLabel} has no such file or folder (\`tv ls ${parentLabel}\` lists its files)`
          : `nothing to remove at "${target}": the model has no version yet`,
      );
    const both = given.find((f) => under(f.path, target));
    if (both)
      throw new UpdateError(
        `"${both.path}" is both given and removed (--remove ${target}): give one or the other`,
      );
  }
  const byPath = new Map<string, Files[number]>();
  for (const file of parent)
    if (!targets.some((t) => under(file.path, t))) byPath.set(file.path, file);
  for (const file of given) byPath.set(file.path, file);
  return [...byPath.values()].sort(inPathOrder);
}

const ORDER: Record<StatusFile['status'], number> = {
  modified: 0,
  added: 1,
  removed: 2,
  unchanged: 3,
};

/** A push's status: its files (`files`, an update's merged ones) against the parent's. */
export function statusOf(
  model: string,
  run: Ingested,
  files: Files,
  skipped: PushStatus['skipped'],
): PushStatus {
  const before = new Map((run.parent?.record.files ?? []).map((f) => [f.path, f]));
  const given = new Map(run.files.map((f, i) => [f.path, i]));
  const counted = new Set<string>();
  const rows: StatusFile[] = [];
  for (const file of files) {
    const old = before.get(file.path);
    const index = given.get(file.path);
    let newBytes = 0;
    // A file the files cache vouched for uploads nothing (its manifest's chunks are all stored).
    if (index !== undefined && !run.fromCache[index]) {
      for (const chunk of (run.manifests[index] as Ingested['manifests'][number]).chunks) {
        if (!run.uploaded.has(chunk.hash) || counted.has(chunk.hash)) continue;
        counted.add(chunk.hash);
        newBytes += chunk.length;
      }
    }
    rows.push({
      path: file.path,
      status: !old ? 'added' : old.manifest === file.manifest ? 'unchanged' : 'modified',
      size: file.size,
      sizeBefore: old?.size ?? null,
      newBytes,
      fromCache: index !== undefined && (run.fromCache[index] ?? false),
    });
  }
  const kept = new Set(files.map((f) => f.path));
  for (const old of before.values())
    if (!kept.has(old.path))
      rows.push({
        path: old.path,
        status: 'removed',
        size: null,
        sizeBefore: old.size,
        newBytes: 0,
        fromCache: false,
      });
  rows.sort((a, b) => ORDER[a.status] - ORDER[b.status] || (a.path < b.path ? -1 : 1));
  const count = (status: StatusFile['status']) => rows.filter((r) => r.status === status).length;
  const read = run.manifests.filter((_, i) => !run.fromCache[i]);
  const cached = run.manifests.filter((_, i) => run.fromCache[i]);
  const parent = run.parent;
  return {
    model,
    sources: [],
    against: parent
      ? { version: `v${parent.number}`, id: parent.id, shortId: parent.id.slice(0, 12) }
      : null,
    files: rows,
    added: count('added'),
    removed: count('removed'),
    modified: count('modified'),
    unchanged: count('unchanged'),
    logicalBytes: files.reduce((n, f) => n + f.size, 0),
    newBytes: rows.reduce((n, r) => n + r.newBytes, 0),
    newChunks: counted.size,
    filesRead: read.length,
    bytesRead: read.reduce((n, m) => n + m.size, 0),
    filesFromCache: cached.length,
    bytesFromCache: cached.reduce((n, m) => n + m.size, 0),
    identical: parent !== undefined && rows.every((r) => r.status === 'unchanged'),
    skipped,
    seconds: Math.round((performance.now() - run.started) / 10) / 100,
  };
}
