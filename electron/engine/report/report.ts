import { dedupRatio, formatBytes } from '../../../shared/format';
import type {
  ChunkRun,
  ChunkSource,
  FileDiff,
  FileReport,
  VersionDiff,
  VersionParent,
  VersionReport,
} from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Manifest, ParsedRef, VersionRecord } from '../repository/format';
import { RepositoryError, type Repository, type VersionEntry } from '../repository/repository';
import {
  attributeNewChunks,
  compareModelFile,
  externalDataChanges,
  VersionFiles,
} from './model-files';
import { ReportTracker } from './progress';
import { compareTextFile } from './text-files';

/**
 * The version of what a report or a diff computes and how its result is shaped: a cached result
 * of another number is computed again. Raise it whenever either changes.
 */
export const REPORT_FORMAT = 2;

async function chunkSet(
  repo: Repository,
  records: VersionRecord[],
  tracker: ReportTracker,
): Promise<Set<string>> {
  const set = new Set<string>();
  const manifests = await mapLimit(
    [...new Set(records.flatMap((r) => r.files.map((f) => f.manifest)))],
    16,
    async (hash) => {
      const manifest = await repo.readManifest(hash);
      tracker.manifestRead();
      return manifest;
    },
  );
  for (const m of manifests) for (const c of m.chunks) set.add(c.hash);
  return set;
}

/**
 * Whether ref `a` was pushed before ref `b`: by the time in the key (a ref key starts with its
 * model's name, so keys of two models compare by name, not time); within a model, by key.
 */
function pushedBefore(a: ParsedRef, b: ParsedRef): boolean {
  return a.model === b.model ? a.base < b.base : a.createdAtMs < b.createdAtMs;
}

/**
 * Records of the versions of every model created before `entry`, removed ones included while
 * their records are there: what the push could find stored. The parent is left out.
 */
async function earlierRecords(
  repo: Repository,
  entry: VersionEntry,
  parentId: string | null,
): Promise<VersionRecord[]> {
  const ids = (await repo.refs())
    .filter((r) => !r.tombstone && pushedBefore(r, entry.ref) && r.versionId !== parentId)
    .map((r) => r.versionId);
  const records = await mapLimit(ids, 16, (id) =>
    repo.readVersion(id).catch((err: unknown) => {
      if (err instanceof RepositoryError) return undefined; // reclaimed by gc after tv rm
      throw err;
    }),
  );
  return records.filter((r): r is VersionRecord => r !== undefined);
}

/**
 * The version `entry` was pushed on, read by the id its record names, whether it is live,
 * removed, or removed and reclaimed by gc (then there is nothing to compare with).
 */
export async function parentOf(
  repo: Repository,
  entry: VersionEntry,
): Promise<{ info: VersionParent; record: VersionRecord | undefined } | null> {
  const id = entry.record.parent;
  if (!id) return null;
  const ref = (await repo.numberedRefs(entry.model)).find((r) => r.ref.versionId === id);
  const removal = ref?.removed ? await repo.removal(ref) : undefined;
  let record: VersionRecord | undefined;
  try {
    record = await repo.readVersion(id);
  } catch (err) {
    // A live parent must be readable (else the repository is damaged: the error says so).
    if (!(err instanceof RepositoryError) || (ref && !ref.removed)) throw err;
  }
  const info: VersionParent = {
    id,
    shortId: id.slice(0, 12),
    label: ref ? `v${ref.number}` : null,
    state: !record ? 'collected' : ref && !ref.removed ? 'live' : 'removed',
    removedAt: removal?.removedAt ?? null,
    removedBy: removal?.removedBy ?? null,
  };
  return { info, record };
}

/**
 * Where each byte of a version came from. The version's figures are those its push recorded
 * (new bytes and chunks, bytes from its parent), so they never change, whatever happens to other
 * versions later. The per-file figures and chunk maps are computed from manifests: chunks the
 * parent (read by id, even once removed) names ("parent"), chunks an earlier version of any model
 * holds or that repeat inside this version ("elsewhere"), and the rest ("new"). For model files,
 * each tensor and metadata key is compared with the parent's file at the same path, and each
 * tensor gets the bytes new chunks carry.
 */
export async function versionReport(
  repo: Repository,
  entry: VersionEntry,
  tracker = new ReportTracker(undefined),
): Promise<VersionReport> {
  const parent = await parentOf(repo, entry);
  const parentRecord = parent?.record;
  const fromParent = parentRecord
    ? await chunkSet(repo, [parentRecord], tracker)
    : new Set<string>();
  const elsewhere = await chunkSet(
    repo,
    await earlierRecords(repo, entry, entry.record.parent),
    tracker,
  );
  const thisFiles = new VersionFiles(repo, entry.record.files, tracker.reads);
  const parentFiles = parentRecord && new VersionFiles(repo, parentRecord.files, tracker.reads);
  // A parent reclaimed by gc leaves nothing to compare tensors with (not "every tensor added").
  const compare = parent?.info.state !== 'collected';
  const inThisVersion = new Set<string>();
  const parentManifests = new Map(parentRecord?.files.map((f) => [f.path, f.manifest]));

  const files: FileReport[] = [];
  tracker.startFiles(entry.record.files.length);
  for (const file of entry.record.files) {
    const manifest = await repo.readManifest(file.manifest);
    const report: FileReport = {
      path: file.path,
      size: manifest.size,
      newBytes: 0,
      reusedFromParentBytes: 0,
      reusedElsewhereBytes: 0,
      chunks: manifest.chunks.length,
      newChunks: 0,
      runs: [],
    };
    let offset = 0;
    let run: ChunkRun | undefined;
    for (const chunk of manifest.chunks) {
      const source: ChunkSource = fromParent.has(chunk.hash)
        ? 'parent'
        : elsewhere.has(chunk.hash) || inThisVersion.has(chunk.hash)
          ? 'elsewhere'
          : 'new';
      inThisVersion.add(chunk.hash);
      if (source === 'new') {
        report.newBytes += chunk.length;
        report.newChunks++;
      } else if (source === 'parent') report.reusedFromParentBytes += chunk.length;
      else report.reusedElsewhereBytes += chunk.length;
      if (run && run.source === source) run.length += chunk.length;
      else {
        run = { offset, length: chunk.length, source };
        report.runs.push(run);
      }
      offset += chunk.length;
    }
    VersionFiles.remember(file.path, file.manifest, manifest, thisFiles, parentFiles);
    if (compare) Object.assign(report, await compareModelFile(file.path, thisFiles, parentFiles));
    const before = parentManifests.get(file.path);
    if (compare && parentFiles && before !== undefined && before !== file.manifest) {
      const text = await compareTextFile(file.path, thisFiles, parentFiles);
      if (text) report.text = text;
    }
    files.push(report);
    tracker.fileDone();
  }
  attributeNewChunks(files);
  const { stats } = entry.record;
  const mapped = files.reduce((n, f) => n + f.newBytes, 0);
  return {
    version: repo.summarize(entry),
    logicalBytes: stats.logicalBytes,
    newBytes: stats.newBytes,
    storedBytes: stats.storedBytes ?? null,
    reusedBytes: stats.logicalBytes - stats.newBytes,
    reusedFromParentBytes: stats.reusedFromParentBytes,
    reusedElsewhereBytes: stats.logicalBytes - stats.newBytes - stats.reusedFromParentBytes,
    chunks: stats.chunks,
    newChunks: stats.newChunks,
    dedupRatio: dedupRatio(stats.logicalBytes, stats.newBytes),
    metadataBytes: stats.metadataBytes,
    seconds: stats.seconds,
    mbps: stats.seconds > 0 ? Math.round(stats.logicalBytes / 1e6 / stats.seconds) : 0,
    parent: parent?.info ?? null,
    note:
      mapped === stats.newBytes
        ? null
        : `the files below count ${formatBytes(mapped)} as new where the push stored ${formatBytes(stats.newBytes)}: ${
            mapped > stats.newBytes
              ? 'chunks it found stored were held by versions gc has reclaimed since, or by a push that never finished'
              : 'it stored again chunks that earlier versions hold'
          }`,
    files,
    computedAt: new Date().toISOString(),
    cached: false,
  };
}

/** Bytes of `newer` held in chunks that `older` does not have. */
function bytesNotIn(newer: Manifest, older: Manifest): number {
  const have = new Set(older.chunks.map((c) => c.hash));
  return newer.chunks.reduce((n, c) => n + (have.has(c.hash) ? 0 : c.length), 0);
}

/** File by file (and tensor by tensor for model files), what changed from `from` to `to`. */
export async function diffVersions(
  repo: Repository,
  from: VersionEntry,
  to: VersionEntry,
  tracker = new ReportTracker(undefined),
): Promise<VersionDiff> {
  const before = new Map(from.record.files.map((f) => [f.path, f]));
  const after = new Map(to.record.files.map((f) => [f.path, f]));
  const paths = [...new Set([...before.keys(), ...after.keys()])];
  const fromFiles = new VersionFiles(repo, from.record.files, tracker.reads);
  const toFiles = new VersionFiles(repo, to.record.files, tracker.reads);
  const files: FileDiff[] = [];
  tracker.startFiles(paths.length);
  for (const path of paths) {
    files.push(await diffFile(repo, path, before.get(path), after.get(path), fromFiles, toFiles));
    tracker.fileDone();
  }
  const order: Record<FileDiff['status'], number> = {
    modified: 0,
    added: 1,
    removed: 2,
    unchanged: 3,
  };
  files.sort(
    (x, y) =>
      y.bytesChanged - x.bytesChanged ||
      order[x.status] - order[y.status] ||
      (x.path < y.path ? -1 : 1),
  );
  return {
    from: repo.summarize(from),
    to: repo.summarize(to),
    files,
    bytesChanged: files.reduce((n, f) => n + f.bytesChanged, 0),
    computedAt: new Date().toISOString(),
    cached: false,
  };
}

type FileEntry = VersionRecord['files'][number];

/** One path of a diff: unchanged, added, removed or modified (model files tensor by tensor). */
async function diffFile(
  repo: Repository,
  path: string,
  a: FileEntry | undefined,
  b: FileEntry | undefined,
  fromFiles: VersionFiles,
  toFiles: VersionFiles,
): Promise<FileDiff> {
  if (a && b && a.manifest === b.manifest) {
    return {
      path,
      status: 'unchanged',
      bytesChanged: 0,
      sizeBefore: a.size,
      sizeAfter: b.size,
      ...(await externalDataChanges(path, toFiles, fromFiles)),
    };
  }
  if (!a) {
    if (!b) throw new Error(`diff: ${path} is in neither version`);
    const diff: FileDiff = {
      path,
      status: 'added',
      bytesChanged: b.size,
      sizeBefore: null,
      sizeAfter: b.size,
    };
    return Object.assign(diff, await compareModelFile(path, toFiles, fromFiles));
  }
  if (!b) {
    return {
      path,
      status: 'removed',
      bytesChanged: a.size,
      sizeBefore: a.size,
      sizeAfter: null,
    };
  }
  const [older, newer] = await Promise.all([
    repo.readManifest(a.manifest),
    repo.readManifest(b.manifest),
  ]);
  const diff: FileDiff = {
    path,
    status: 'modified',
    bytesChanged: bytesNotIn(newer, older),
    sizeBefore: a.size,
    sizeAfter: b.size,
  };
  VersionFiles.remember(path, a.manifest, older, fromFiles);
  VersionFiles.remember(path, b.manifest, newer, toFiles);
  const text = await compareTextFile(path, toFiles, fromFiles);
  if (text) diff.text = text;
  return Object.assign(diff, await compareModelFile(path, toFiles, fromFiles));
}
