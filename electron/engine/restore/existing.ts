import { lstat, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { sharedGuide } from '../chunking/guided';
import { chunkCount, chunkEntries, type Manifest } from '../repository/format';
import type { Repository } from '../repository/repository';
import type { ChunkHashPool } from '../workers/pool';
import type { ChunkInfo } from '../workers/protocol';
import { chunkFile, stitchChunks } from '../workers/segments';
import { RestoreError } from './errors';

// A pull into a folder that already holds files of the version restores only what differs. A
// file of the right size whose bytes hash, chunk by chunk at the manifest's offsets, to the
// version's chunks is left as it is. Any other file at that path, and what a killed pull left of
// the file it was writing (its temp file), still serve: the chunks found in them are read from
// there instead of the repository (each checked against its hash as it is written).

/** The temp file a pull writes a file into before renaming it into place. */
export function tempFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.tv-partial`);
}

/** Where chunks of a file can be read in the destination: file, and offset by chunk hash. */
export interface LocalChunks {
  file: string;
  offsets: Map<string, number>;
}

export interface Existing {
  /** The file is there with exactly the version's bytes. */
  same: boolean;
  /** Files in the destination holding some of its chunks (the old file, a killed pull's temp). */
  sources: LocalChunks[];
}

/**
 * Refuses a target whose folders in the destination are not plain folders: a symbolic link there
 * could send the file outside the destination.
 */
export async function checkInside(dest: string, target: string): Promise<void> {
  const parts = relative(dest, dirname(target)).split(sep).filter(Boolean);
  let at = dest;
  for (const part of parts) {
    at = join(at, part);
    const info = await lstat(at).catch(() => undefined);
    if (!info) return; // created by the pull, as a plain folder
    if (!info.isDirectory())
      throw new RestoreError(
        `cannot restore into ${at}: it is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a folder'} (a pull writes only inside its destination: move it away first)`,
      );
  }
}

/** What the destination already holds of a file of the version. */
export async function existing(
  repo: Repository,
  pool: ChunkHashPool,
  target: string,
  manifestHash: string,
  manifest: Manifest,
  signal?: AbortSignal,
): Promise<Existing> {
  const sources: LocalChunks[] = [];
  let same = false;
  // A temp left by a killed pull: moved aside (this pull writes a new one), read, then removed.
  const stale = await regularSize(tempFor(target));
  if (stale !== undefined) {
    const aside = `${tempFor(target)}-resumed`;
    await rename(tempFor(target), aside);
    const found = await chunksOf(repo, pool, aside, stale, manifestHash, manifest, signal);
    sources.push({ file: aside, offsets: found.offsets });
  }
  const size = await regularSize(target);
  if (size !== undefined) {
    const found = await chunksOf(repo, pool, target, size, manifestHash, manifest, signal);
    same = found.same;
    sources.push({ file: target, offsets: found.offsets });
  }
  return { same, sources };
}

/** Removes what a resumed pull read from (the aside temp) once the file is in place. */
export async function dropResumed(sources: LocalChunks[]): Promise<void> {
  await Promise.all(
    sources
      .filter((s) => s.file.endsWith('.tv-partial-resumed'))
      .map((s) => rm(s.file, { force: true })),
  );
}

async function regularSize(path: string): Promise<number | undefined> {
  const info = await lstat(path).catch(() => undefined);
  return info?.isFile() ? info.size : undefined;
}

/**
 * The chunks of a file on disk, cut and hashed with the version's file as the guide (where the
 * bytes are the version's, every cut is predicted: one read and one hash per byte), and whether
 * they are exactly the version's.
 */
async function chunksOf(
  repo: Repository,
  pool: ChunkHashPool,
  path: string,
  size: number,
  manifestHash: string,
  manifest: Manifest,
  signal?: AbortSignal,
): Promise<{ same: boolean; offsets: Map<string, number> }> {
  const offsets = new Map<string, number>();
  if (size === 0) return { same: manifest.size === 0, offsets };
  const cut: ChunkInfo[] = [];
  const guide =
    chunkCount(manifest) >= 2
      ? { key: manifestHash, chunks: sharedGuide(chunkEntries(manifest)) }
      : undefined;
  for await (const batch of chunkFile(pool, {
    path,
    size,
    params: repo.chunking,
    algorithm: repo.config.hash,
    ...(guide ? { guide } : {}),
    ...(signal ? { signal } : {}),
  })) {
    await batch.take([]);
    for (const chunk of batch.chunks) {
      cut.push(chunk);
      if (!offsets.has(chunk.hash)) offsets.set(chunk.hash, chunk.offset);
    }
  }
  const chain = size === manifest.size ? stitchChunks(cut, size) : undefined;
  const same =
    chain !== undefined &&
    chain.length === manifest.chunks.length &&
    chain.every((c, i) => c.hash === manifest.chunks[i]?.hash);
  return { same, offsets };
}
