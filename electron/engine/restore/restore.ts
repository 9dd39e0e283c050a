import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { RestoreProgress, RestoreResult } from '../../../shared/types';
import { mapLimit } from '../concurrency';
import { throttledProgress } from '../progress';
import { chunkOffsets } from '../repository/format';
import type { VersionEntry, Repository } from '../repository/repository';
import { ObjectNotFoundError, objectKey, readAll } from '../storage/store';

export interface RestoreOptions {
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
  /** Chunk downloads in flight at once (default 32). */
  concurrency?: number;
}

export class RestoreError extends Error {
  override name = 'RestoreError';
}

/**
 * The path a version's file gets under the destination, or an error when it would land outside
 * it (an absolute path, "..", a drive letter): such a version is refused whole.
 */
export function safeJoin(destination: string, path: string): string {
  const parts = path.split('/');
  const bad =
    path.length === 0 ||
    path.includes('\\') ||
    path.includes('\0') ||
    isAbsolute(path) ||
    /^[A-Za-z]:/.test(path) ||
    parts.some((p) => p === '' || p === '.' || p === '..');
  const target = resolve(destination, ...parts);
  const rel = relative(destination, target);
  if (bad || rel.startsWith('..') || isAbsolute(rel)) {
    throw new RestoreError(
      `the version holds a path that would land outside the destination ("${path}"): refusing to restore it`,
    );
  }
  return target;
}

/**
 * Writes a version's files under `destination` (which must be empty or new). Each file is written
 * at its chunks' offsets into a temp file beside its final name, every chunk's hash verified,
 * then fsynced and renamed. On any failure everything this restore created is removed.
 */
export async function restore(
  repo: Repository,
  entry: VersionEntry,
  destination: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const started = performance.now();
  const dest = resolve(destination);
  const { record } = entry;
  const targets = record.files.map((f) => safeJoin(dest, f.path));

  const existing = await stat(dest).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new RestoreError(`cannot use ${destination} as the destination: ${err.message}`);
  });
  if (existing && !existing.isDirectory())
    throw new RestoreError(
      `${destination} exists and is not a folder: choose an empty or new folder`,
    );
  if (existing && (await readdir(dest)).length > 0)
    throw new RestoreError(`${destination} is not empty: choose an empty or new folder`);
  try {
    await mkdir(dest, { recursive: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new RestoreError(
      `cannot create ${destination}: ${e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.message}`,
    );
  }

  const totalBytes = record.files.reduce((n, f) => n + f.size, 0);
  const progress: RestoreProgress = {
    files: record.files.length,
    filesDone: 0,
    totalBytes,
    bytesWritten: 0,
    mbps: 0,
    etaSeconds: null,
  };
  const emit = throttledProgress(progress, totalBytes, (p) => p.bytesWritten, options.onProgress);

  let chunkCount = 0;
  const temps = new Set<string>();
  try {
    for (const [i, file] of record.files.entries()) {
      options.signal?.throwIfAborted();
      const target = targets[i] as string;
      const manifest = await repo.readManifest(file.manifest);
      await mkdir(dirname(target), { recursive: true });
      const temp = join(dirname(target), `.${randomBytes(6).toString('hex')}.tv-partial`);
      temps.add(temp);
      const handle = await open(temp, 'wx');
      try {
        const offsets = chunkOffsets(manifest);
        await mapLimit(manifest.chunks, options.concurrency ?? 32, async (chunk, k) => {
          options.signal?.throwIfAborted();
          const data = await fetchChunk(
            repo,
            chunk.hash,
            file.path,
            offsets[k] as number,
            chunk.length,
          );
          await handle.write(data, 0, data.length, offsets[k]);
          progress.bytesWritten += data.length;
          emit();
        });
        chunkCount += manifest.chunks.length;
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
      temps.delete(temp);
      progress.filesDone++;
    }
  } catch (err) {
    // Leave the destination as it was: no partial file, no half-restored version.
    await Promise.all([...temps].map((t) => rm(t, { force: true })));
    await Promise.all(targets.map((t) => rm(t, { force: true })));
    await removeEmptyDirs(dest, existing === undefined);
    throw err;
  }
  emit(true);
  return {
    model: entry.model,
    version: `v${entry.number}`,
    id: entry.id,
    destination: dest,
    files: record.files.length,
    bytes: totalBytes,
    chunks: chunkCount,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}

async function fetchChunk(
  repo: Repository,
  hash: string,
  path: string,
  offset: number,
  length: number,
): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readAll(repo.store, objectKey(hash));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      throw new RestoreError(
        `cannot restore ${path}: chunk ${hash} (bytes ${offset}-${offset + length - 1}) is missing from ${repo.location} (run \`tv verify\`)`,
      );
    }
    throw new RestoreError(`cannot restore ${path}: chunk ${hash}: ${(err as Error).message}`);
  }
  const actual = repo.hash(data);
  if (actual !== hash || data.length !== length) {
    throw new RestoreError(
      `cannot restore ${path}: chunk ${hash} (bytes ${offset}-${offset + length - 1}) is corrupt: its content hashes to ${actual} (run \`tv verify\`)`,
    );
  }
  return data;
}

/** Removes folders this restore left empty under `root` (and `root` itself if it created it). */
async function removeEmptyDirs(root: string, removeRoot: boolean): Promise<void> {
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await visit(join(dir, e.name));
    if (dir !== root || removeRoot) await rmdir(dir).catch(() => {});
  };
  await visit(root);
}
