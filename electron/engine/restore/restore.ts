import { mkdir, open, rename, rm, rmdir, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { RestoreProgress, RestoreResult } from '../../../shared/types';
import { Semaphore } from '../concurrency';
import { throttledProgress } from '../progress';
import { chunkOffsets, type Manifest, type VersionRecord } from '../repository/format';
import type { VersionEntry, Repository } from '../repository/repository';
import { ENCODING_NONE } from '../storage/packs/format';
import type { Located, PackedStore } from '../storage/packs/packed-store';
import { hashOfKey, ObjectNotFoundError, objectKey, readAll } from '../storage/store';
import type { ChunkHashPool } from '../workers/pool';
import type { WriteChunk, WriteTask } from '../workers/protocol';
import { prepareDestination, removeCreated } from './destination';
import {
  checkInside,
  dropResumed,
  existing,
  tempFor,
  type Existing,
  type LocalChunks,
} from './existing';
import { selectFiles, type FileSelection } from './select';
import { RestoreError } from './errors';

export interface RestoreOptions extends FileSelection {
  /** The workers that verify the chunks and write them (see workers/write-task). */
  pool: ChunkHashPool;
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
  /** Chunk downloads in flight at once, for chunks no worker can read itself (default 64). */
  concurrency?: number;
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
 * Writes a version's files (or those `include`, `exclude` or `paths` select) under
 * `destination`: a new or empty folder, or one that already holds some of them (a pull run again
 * after it was stopped, or over an older version). A file already there with the version's bytes
 * is left as it is; the others are written, each into a temp file beside its final name, every
 * chunk's hash verified (by the pool's workers), then fsynced and renamed into place; chunks the
 * destination already holds are read from there. Files not in the version are left alone. On a
 * failure in a folder that was there, the files finished stay (a pull run again resumes from
 * them); in a folder the pull made, nothing stays; temp files go. A cancelled pull keeps all it
 * wrote, temps included, for the same pull to resume from.
 */
export async function restore(
  repo: Repository,
  entry: VersionEntry,
  destination: string,
  options: RestoreOptions,
): Promise<RestoreResult> {
  const started = performance.now();
  const dest = resolve(destination);
  const label = `${entry.model}@v${entry.number}`;
  // A version with a path that would escape is refused whole, whatever is selected.
  for (const file of entry.record.files) safeJoin(dest, file.path);
  const files = selectFiles(entry.record.files, options, label);
  const targets = files.map((f) => safeJoin(dest, f.path));
  const destinationFolder = await prepareDestination(destination, dest);

  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  const progress: RestoreProgress = {
    phase: 'checking',
    files: files.length,
    filesDone: 0,
    totalBytes,
    bytesChecked: 0,
    bytesWritten: 0,
    mbps: 0,
    etaSeconds: null,
  };
  const emit = throttledProgress(
    progress,
    totalBytes,
    (p) => p.bytesWritten + p.bytesChecked,
    options.onProgress,
  );

  const temps = new Set<string>();
  const work = new RestoreRun(repo, options, progress, emit);
  let plan: PlannedFile[] = [];
  try {
    plan = await planFiles(repo, options, dest, files, targets, progress, emit);
    progress.phase = 'writing';
    await work.run(
      plan.filter((p) => !p.existing.same),
      temps,
    );
  } catch (err) {
    // Stopped (cancelled), everything stays, the files being written as their temps: the same pull
    // resumes from them. A failure removes the temps (what made it fail may be in them); in a
    // folder that was there, the files it finished stay for the same pull to resume from; a folder
    // it made is left as it was found, not there (its files and folders removed).
    const stopped = options.signal?.aborted === true;
    const madeHere = destinationFolder.created.length > 0;
    if (!stopped) {
      await Promise.all([...temps].map((t) => rm(t, { force: true })));
      if (madeHere) await Promise.all(work.written.splice(0).map((f) => rm(f, { force: true })));
      await work.removeCreatedFolders();
      await removeCreated(destinationFolder);
    }
    const finished = madeHere && !stopped ? 0 : work.filesWritten;
    throw resumable(err, finished, plan, stopped ? temps.size : 0);
  } finally {
    await Promise.all(plan.map((p) => dropResumed(p.existing.sources)));
  }
  emit(true);
  const unchanged = plan.filter((p) => p.existing.same);
  return {
    model: entry.model,
    version: `v${entry.number}`,
    id: entry.id,
    destination: dest,
    files: files.length,
    bytes: totalBytes,
    chunks: work.chunks,
    seconds: Math.round((performance.now() - started) / 10) / 100,
    filesWritten: work.filesWritten,
    filesUnchanged: unchanged.length,
    bytesUnchanged: unchanged.reduce((n, p) => n + p.file.size, 0),
    bytesFromDestination: work.bytesFromDestination,
  };
}

/** A file to restore: where it goes, its chunks, and what the destination holds of it. */
interface PlannedFile {
  file: VersionRecord['files'][number];
  target: string;
  manifest: Manifest;
  existing: Existing;
}

/** Manifests read (and destination files checked) at once: each read is a round trip to S3. */
const PLAN_CONCURRENCY = 8;

/**
 * Each file's manifest, and what the destination already holds of it (checked in the workers):
 * several files at once, so that a model of many files does not wait a round trip per file.
 */
async function planFiles(
  repo: Repository,
  options: RestoreOptions,
  dest: string,
  files: VersionRecord['files'],
  targets: string[],
  progress: RestoreProgress,
  emit: () => void,
): Promise<PlannedFile[]> {
  const plan = new Array<PlannedFile>(files.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  // Like mapLimit, but no file starts once one has failed (as when they went one by one).
  const planNext = async (): Promise<void> => {
    while (!failure && next < files.length) {
      const i = next++;
      const file = files[i] as VersionRecord['files'][number];
      const target = targets[i] as string;
      try {
        await checkInside(dest, target);
        const manifest = await repo.readManifest(file.manifest);
        const found = await existing(
          repo,
          options.pool,
          target,
          file.manifest,
          manifest,
          options.signal,
        );
        if (found.same) {
          progress.filesDone++;
          progress.bytesChecked += file.size;
          emit();
        }
        plan[i] = { file, target, manifest, existing: found };
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PLAN_CONCURRENCY, files.length) }, planNext));
  if (failure) throw failure.err;
  return plan;
}

/** A failed pull's error, saying what stays and that the same pull resumes from it. */
function resumable(
  err: unknown,
  written: number,
  plan: PlannedFile[],
  partlyWritten: number,
): unknown {
  const kept = written + plan.filter((p) => p.existing.same).length;
  if (!(err instanceof Error) || (kept === 0 && partlyWritten === 0) || kept === plan.length)
    return err;
  const held = [
    ...(kept > 0 ? [`${kept} of ${plan.length} files are in place`] : []),
    ...(partlyWritten > 0 ? [`${partlyWritten} partly written`] : []),
  ];
  err.message += ` (${held.join(', ')}; the same pull resumes from them)`;
  return err;
}

/** Chunks per write task: large enough to keep the messages few, small enough to pipeline. */
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_CHUNKS = 128;
/** Files written at once (each holds an open descriptor until it is synced and renamed). */
const OPEN_FILES = 8;
/** Batches in flight when they come from packs in a remote store (latency-bound). */
const REMOTE_BATCHES = 16;
/** A file being written starts its pages' writeback every this many bytes. */
const SYNC_EVERY = 32 * 1024 * 1024;

interface OpenFile {
  temp: string;
  handle: FileHandle;
  /** Bytes written since the last background datasync started. */
  unsynced: number;
  syncing?: Promise<void> | undefined;
}

interface Batch {
  path: string;
  /** Files in the destination holding some of the file's chunks (read before the repository). */
  sources: LocalChunks[];
  /** Bytes of the batch's last task read from those files. */
  fromDestination: number;
  /** The file's chunks and their offsets in it. */
  chunks: Manifest['chunks'];
  offsets: number[];
  first: number;
  end: number;
}

/**
 * One restore's pipeline. Files are cut into batches of consecutive chunks; a few batches per
 * worker are in flight at once. For each batch this thread finds where a local repository keeps
 * the chunks (the worker reads them from the packs itself) or downloads the others, and a worker
 * verifies every chunk's hash and writes the batch into the file at its offset. Each file is then
 * fsynced and renamed into place.
 */
class RestoreRun {
  chunks = 0;
  filesWritten = 0;
  /** The files this pull wrote (renamed into place). */
  readonly written: string[] = [];
  /** Bytes of chunks read from files already in the destination instead of the repository. */
  bytesFromDestination = 0;
  private readonly packs: PackedStore | undefined;
  /** The packs are files on this machine: the workers read them themselves. */
  private readonly local: boolean;
  private readonly downloads: Semaphore;
  private readonly batches: Semaphore;
  private readonly openFiles = new Semaphore(OPEN_FILES);
  /** Batch buffers the workers handed back, for the next downloads. */
  private readonly spares: ArrayBuffer[] = [];
  private failure: unknown;
  private readonly stop = new AbortController();
  private readonly createdFolders = new Set<string>();

  constructor(
    private readonly repo: Repository,
    private readonly options: RestoreOptions,
    private readonly progress: RestoreProgress,
    private readonly emit: () => void,
  ) {
    this.packs = repo.stack.packs;
    this.local = this.packs?.blobs.localPath !== undefined;
    this.downloads = new Semaphore(options.concurrency ?? 64);
    // Batches downloaded from packs come in a few ranged reads each, latency-bound: more in
    // flight than the workers need to stay busy with local files.
    const remotePacks = this.packs && !this.local;
    this.batches = new Semaphore(
      remotePacks ? Math.max(REMOTE_BATCHES, options.pool.size * 2 + 2) : options.pool.size * 2 + 2,
    );
  }

  async run(files: PlannedFile[], temps: Set<string>): Promise<void> {
    const { signal } = this.options;
    const onAbort = () => this.fail(signal?.reason ?? new Error('aborted'));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort);
    const finishing: Promise<void>[] = [];
    try {
      for (const { file, target, manifest, existing } of files) {
        if (this.failure) break;
        await this.openFiles.acquire();
        const opened = await this.open(target, temps).catch((err: unknown) => {
          this.openFiles.release();
          throw err;
        });
        const writes: Promise<void>[] = [];
        for (const batch of batchesOf(file.path, manifest, existing.sources)) {
          await this.batches.acquire();
          if (this.failure) {
            this.batches.release();
            break;
          }
          const write = this.write(batch, opened.handle.fd).then(
            () => {
              const bytes = batchBytes(batch);
              this.progress.bytesWritten += bytes;
              this.emit();
              this.writeBack(opened, bytes);
            },
            (err: unknown) => this.fail(err),
          );
          writes.push(write.finally(() => this.batches.release()));
        }
        this.chunks += manifest.chunks.length;
        finishing.push(
          this.finish(writes, opened, target, temps).finally(() => this.openFiles.release()),
        );
      }
    } catch (err) {
      this.fail(err);
    } finally {
      await Promise.allSettled(finishing);
      signal?.removeEventListener('abort', onAbort);
    }
    if (this.failure) throw this.failure;
  }

  /**
   * Starts the disk writing a big file's pages while the next batches come: a datasync in the
   * background every SYNC_EVERY bytes, so the fsync before the rename finds little left to do.
   */
  private writeBack(file: OpenFile, bytes: number): void {
    file.unsynced += bytes;
    if (file.unsynced < SYNC_EVERY || file.syncing) return;
    file.unsynced = 0;
    file.syncing = file.handle
      .datasync()
      .catch(() => {}) // the fsync before the rename reports a failure
      .finally(() => (file.syncing = undefined));
  }

  private fail(err: unknown): void {
    this.failure ??= err;
    this.stop.abort();
  }

  /** Removes the folders this pull made inside the destination, if it left them empty. */
  async removeCreatedFolders(): Promise<void> {
    // Deepest first: a folder empties once the ones in it are gone.
    const folders = [...this.createdFolders].sort((a, b) => b.length - a.length);
    for (const folder of folders) await rmdir(folder).catch(() => {});
  }

  private async open(target: string, temps: Set<string>): Promise<OpenFile> {
    const first = await mkdir(dirname(target), { recursive: true });
    // Every folder from the first one made down to the file's, for removeCreatedFolders.
    if (first)
      for (let dir = dirname(target); dir.length >= first.length; dir = dirname(dir))
        this.createdFolders.add(dir);
    // Named after its file, so that a pull run again after this one was killed finds it.
    const temp = tempFor(target);
    const handle = await open(temp, 'wx').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'EEXIST'
        ? new RestoreError(`another pull is writing ${target} (${temp} exists): wait for it`)
        : err;
    });
    temps.add(temp);
    return { temp, handle, unsynced: 0 };
  }

  /** Once the file's batches are written: fsync, close, rename into place. */
  private async finish(
    writes: Promise<void>[],
    file: OpenFile,
    target: string,
    temps: Set<string>,
  ): Promise<void> {
    try {
      await Promise.all(writes);
      if (this.failure) return;
      await file.syncing;
      await file.handle.sync();
    } catch (err) {
      this.fail(err);
      return;
    } finally {
      await file.syncing;
      await file.handle.close();
    }
    try {
      await rename(file.temp, target);
      temps.delete(file.temp);
      this.written.push(target);
      this.progress.filesDone++;
      this.filesWritten++;
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * Verifies and writes one batch. A pack that moved since it was located is read through get;
   * a chunk read from a file in the destination that did not hash as expected (changed since it
   * was checked) comes from the repository instead.
   */
  private async write(batch: Batch, fd: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const located = attempt === 0 ? await this.locate(batch) : [];
      const task = await this.task(batch, fd, located);
      const result = await this.options.pool.write(task, this.stop.signal);
      if (result.spare) this.spares.push(result.spare);
      if (result.type === 'written') {
        this.bytesFromDestination += batch.fromDestination;
        return;
      }
      const index = batch.first + ('index' in result ? result.index : 0);
      const chunk = batch.chunks[index] as Manifest['chunks'][number];
      if (attempt === 0 && batch.sources.length > 0 && result.type !== 'error') {
        batch.sources = [];
        continue;
      }
      if (result.type === 'corrupt') {
        const encoded = task.chunks[index - batch.first]?.encoded;
        const decoded = encoded ? `, decoded from ${encoded.where},` : '';
        throw new RestoreError(
          `cannot restore ${batch.path}: chunk ${chunk.hash} (${span(batch, index)}) is corrupt: its content${decoded} hashes to ${result.actual} (run \`tv verify --full\` to find every damaged object)`,
        );
      }
      if (result.type === 'error')
        throw new RestoreError(`cannot write ${batch.path}: ${result.message}`);
      if (attempt > 0)
        throw new RestoreError(
          `cannot restore ${batch.path}: chunk ${chunk.hash}: ${result.message}`,
        );
    }
  }

  /** Where a local repository keeps each chunk of the batch, in a file a worker can read. */
  private async locate(
    batch: Batch,
  ): Promise<(Pick<WriteChunk, 'from' | 'encoded'> | undefined)[]> {
    if (!this.packs || !this.local) return [];
    const hashes = batch.chunks.slice(batch.first, batch.end).map((c) => c.hash);
    const where = await this.packs.locateMany(hashes);
    // An index that disagrees with the manifest about a length: read through the store, which
    // reports it. Bytes stored encoded are decoded by the worker.
    return where.map((w, k) =>
      w?.file &&
      w.length === (batch.chunks[batch.first + k] as Manifest['chunks'][number]).length &&
      (w.encoding === ENCODING_NONE || w.storedLength < w.length)
        ? { from: { file: w.file, offset: w.offset }, ...encodedPart(w) }
        : undefined,
    );
  }

  /** The batch as a write task: located chunks by place, the others downloaded into `data`. */
  private async task(
    batch: Batch,
    fd: number,
    located: (Pick<WriteChunk, 'from' | 'encoded'> | undefined)[],
  ): Promise<WriteTask> {
    const chunks: WriteChunk[] = [];
    const fetch: number[] = [];
    batch.fromDestination = 0;
    for (let i = batch.first; i < batch.end; i++) {
      const { hash, length } = batch.chunks[i] as Manifest['chunks'][number];
      const here = inDestination(batch.sources, hash);
      if (here) batch.fromDestination += length;
      const stored = here ? { from: here } : located[i - batch.first];
      chunks.push(stored ? { hash, length, ...stored } : { hash, length });
      if (!stored) fetch.push(i);
    }
    const task: WriteTask = {
      type: 'write',
      algorithm: this.repo.config.hash,
      fd,
      position: batch.offsets[batch.first] as number,
      chunks,
    };
    if (fetch.length === 0) return task;
    // One buffer of the batch's own (recycled from an earlier batch), handed to the worker.
    const lengths = fetch.map((i) => (batch.chunks[i] as Manifest['chunks'][number]).length);
    const positions: number[] = [];
    let total = 0;
    for (const length of lengths) {
      positions.push(total);
      total += length;
    }
    const data = new Uint8Array(this.takeBuffer(total), 0, total);
    if (this.packs && !this.local) {
      const where = await this.fetchRanges(batch, fetch, this.packs, data, positions, lengths);
      // Chunks placed as their stored bytes: the worker decodes them.
      where.forEach((w, k) => {
        const chunk = chunks[(fetch[k] as number) - batch.first] as WriteChunk;
        if (w && w.encoding !== ENCODING_NONE && w.storedLength < w.length)
          Object.assign(chunk, encodedPart(w));
      });
    } else {
      const fetched = await Promise.all(
        fetch.map((i) => this.downloads.with(() => this.fetch(batch, i))),
      );
      fetched.forEach((bytes, k) => data.set(bytes, positions[k] as number));
    }
    task.data = data;
    return task;
  }

  /** A buffer of at least this many bytes: one a worker handed back, or a new one. */
  private takeBuffer(bytes: number): ArrayBuffer {
    const index = this.spares.findIndex((b) => b.byteLength >= bytes);
    if (index >= 0) return this.spares.splice(index, 1)[0] as ArrayBuffer;
    // Room for a batch that ends with a big chunk, so buffers serve every batch.
    return new ArrayBuffer(Math.max(bytes, BATCH_BYTES + (1 << 20)));
  }

  /**
   * Chunks of a batch from packs in a remote store, straight into the batch's buffer: chunks
   * that lie together in a pack come in one ranged read (see PackedStore.readInto).
   */
  private async fetchRanges(
    batch: Batch,
    indexes: number[],
    packs: PackedStore,
    data: Uint8Array,
    positions: number[],
    lengths: number[],
  ): Promise<(Located | undefined)[]> {
    this.stop.signal.throwIfAborted();
    const hashes = indexes.map((i) => (batch.chunks[i] as Manifest['chunks'][number]).hash);
    try {
      const where = await packs.locateMany(hashes);
      await packs.readInto(hashes, data, positions, lengths, 8, where, true);
      return where;
    } catch (err) {
      const missing = err instanceof ObjectNotFoundError ? hashOfKey(err.key) : undefined;
      const index = missing ? indexes[hashes.indexOf(missing)] : undefined;
      if (missing && index !== undefined)
        throw new RestoreError(
          `cannot restore ${batch.path}: chunk ${missing} (${span(batch, index)}) is missing from ${this.repo.location} (run \`tv verify\`)`,
        );
      throw new RestoreError(`cannot restore ${batch.path}: ${(err as Error).message}`);
    }
  }

  private async fetch(batch: Batch, index: number): Promise<Buffer> {
    this.stop.signal.throwIfAborted();
    const { hash, length } = batch.chunks[index] as Manifest['chunks'][number];
    let data: Buffer;
    try {
      data = await readAll(this.repo.store, objectKey(hash));
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw new RestoreError(
          `cannot restore ${batch.path}: chunk ${hash} (${span(batch, index)}) is missing from ${this.repo.location} (run \`tv verify\`)`,
        );
      }
      throw new RestoreError(
        `cannot restore ${batch.path}: chunk ${hash}: ${(err as Error).message}`,
      );
    }
    if (data.length !== length) {
      throw new RestoreError(
        `cannot restore ${batch.path}: chunk ${hash} (${span(batch, index)}) is corrupt: it holds ${data.length} bytes, not ${length} (run \`tv verify --full\` to find every damaged object)`,
      );
    }
    return data;
  }
}

function* batchesOf(path: string, manifest: Manifest, sources: LocalChunks[]): Generator<Batch> {
  const { chunks } = manifest;
  const offsets = chunkOffsets(manifest);
  let first = 0;
  while (first < chunks.length) {
    let end = first;
    let bytes = 0;
    while (end < chunks.length && end - first < BATCH_CHUNKS && bytes < BATCH_BYTES)
      bytes += (chunks[end++] as Manifest['chunks'][number]).length;
    yield { path, sources, fromDestination: 0, chunks, offsets, first, end };
    first = end;
  }
}

/** Where a chunk lies in a file of the destination, if one holds it. */
function inDestination(
  sources: LocalChunks[],
  hash: string,
): { file: string; offset: number } | undefined {
  for (const source of sources) {
    const offset = source.offsets.get(hash);
    if (offset !== undefined) return { file: source.file, offset };
  }
  return undefined;
}

function batchBytes(batch: Batch): number {
  let n = 0;
  for (let i = batch.first; i < batch.end; i++)
    n += (batch.chunks[i] as Manifest['chunks'][number]).length;
  return n;
}

/** "bytes A-B": where a chunk lies in its file. */
function span(batch: Batch, index: number): string {
  const start = batch.offsets[index] as number;
  const length = (batch.chunks[index] as Manifest['chunks'][number]).length;
  return `bytes ${start}-${start + length - 1}`;
}

/** A chunk stored encoded, as a write task names it (its worker decodes it). */
function encodedPart(w: Located): Pick<WriteChunk, 'encoded'> {
  if (w.encoding === ENCODING_NONE) return {};
  return {
    encoded: {
      encoding: w.encoding,
      storedLength: w.storedLength,
      where: `pack ${w.key} at offset ${w.offset}`,
    },
  };
}
