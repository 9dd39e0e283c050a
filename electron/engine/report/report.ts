import type {
  ChunkRun,
  ChunkSource,
  FileDiff,
  FileReport,
  VersionDiff,
  VersionReport,
} from '../../../shared/types';
import { mapLimit } from '../concurrency';
import type { Manifest } from '../repository/format';
import { dedupRatio, type Repository, type VersionEntry } from '../repository/repository';
import {
  attributeNewChunks,
  compareModelFile,
  externalDataChanges,
  VersionFiles,
} from './model-files';

async function chunkSet(repo: Repository, entries: VersionEntry[]): Promise<Set<string>> {
  const set = new Set<string>();
  const manifests = await mapLimit(
    entries.flatMap((e) => e.record.files.map((f) => f.manifest)),
    16,
    (hash) => repo.readManifest(hash),
  );
  for (const m of manifests) for (const c of m.chunks) set.add(c.hash);
  return set;
}

/** Versions of every model created before `entry` (its parent among them). */
async function earlierVersions(repo: Repository, entry: VersionEntry): Promise<VersionEntry[]> {
  const models = await repo.modelNames();
  const all = (await Promise.all(models.map((m) => repo.versions(m)))).flat();
  return all.filter((v) => v.ref.base < entry.ref.base);
}

/**
 * Where each byte of a version came from, computed from manifests: chunks its parent names
 * ("parent"), chunks an earlier version of any model holds or that repeat inside this version
 * ("elsewhere"), and the rest ("new"). Per file, the chunk map as runs; for model files, each
 * tensor and metadata key compared with the parent's file at the same path, and the bytes of each
 * tensor that new chunks carry.
 */
export async function versionReport(repo: Repository, entry: VersionEntry): Promise<VersionReport> {
  const earlier = await earlierVersions(repo, entry);
  const parent = earlier.find((v) => v.id === entry.record.parent);
  const fromParent = parent ? await chunkSet(repo, [parent]) : new Set<string>();
  const elsewhere = await chunkSet(
    repo,
    earlier.filter((v) => v !== parent),
  );
  const thisFiles = new VersionFiles(repo, entry.record.files);
  const parentFiles = parent && new VersionFiles(repo, parent.record.files);
  const inThisVersion = new Set<string>();

  const files: FileReport[] = [];
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
    Object.assign(report, await compareModelFile(file.path, thisFiles, parentFiles));
    files.push(report);
  }
  attributeNewChunks(files);
  const sum = (pick: (f: FileReport) => number) => files.reduce((n, f) => n + pick(f), 0);
  const logicalBytes = sum((f) => f.size);
  const newBytes = sum((f) => f.newBytes);
  const seconds = entry.record.stats.seconds;
  return {
    version: repo.summarize(entry),
    logicalBytes,
    newBytes,
    reusedBytes: logicalBytes - newBytes,
    reusedFromParentBytes: sum((f) => f.reusedFromParentBytes),
    reusedElsewhereBytes: sum((f) => f.reusedElsewhereBytes),
    chunks: sum((f) => f.chunks),
    newChunks: sum((f) => f.newChunks),
    dedupRatio: dedupRatio(logicalBytes, newBytes + entry.record.stats.metadataBytes),
    seconds,
    mbps: seconds > 0 ? Math.round(logicalBytes / 1e6 / seconds) : 0,
    files,
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
): Promise<VersionDiff> {
  const before = new Map(from.record.files.map((f) => [f.path, f]));
  const after = new Map(to.record.files.map((f) => [f.path, f]));
  const paths = [...new Set([...before.keys(), ...after.keys()])];
  const fromFiles = new VersionFiles(repo, from.record.files);
  const toFiles = new VersionFiles(repo, to.record.files);
  const files: FileDiff[] = [];
  for (const path of paths) {
    const a = before.get(path);
    const b = after.get(path);
    if (a && b && a.manifest === b.manifest) {
      files.push({
        path,
        status: 'unchanged',
        bytesChanged: 0,
        sizeBefore: a.size,
        sizeAfter: b.size,
        ...(await externalDataChanges(path, toFiles, fromFiles)),
      });
      continue;
    }
    if (!a && b) {
      const diff: FileDiff = {
        path,
        status: 'added',
        bytesChanged: b.size,
        sizeBefore: null,
        sizeAfter: b.size,
      };
      Object.assign(diff, await compareModelFile(path, toFiles, fromFiles));
      files.push(diff);
      continue;
    }
    if (a && !b) {
      files.push({
        path,
        status: 'removed',
        bytesChanged: a.size,
        sizeBefore: a.size,
        sizeAfter: null,
      });
      continue;
    }
    const [older, newer] = await Promise.all([
      repo.readManifest(a!.manifest),
      repo.readManifest(b!.manifest),
    ]);
    const diff: FileDiff = {
      path,
      status: 'modified',
      bytesChanged: bytesNotIn(newer, older),
      sizeBefore: a!.size,
      sizeAfter: b!.size,
    };
    VersionFiles.remember(path, a!.manifest, older, fromFiles);
    VersionFiles.remember(path, b!.manifest, newer, toFiles);
    Object.assign(diff, await compareModelFile(path, toFiles, fromFiles));
    files.push(diff);
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
  };
}
