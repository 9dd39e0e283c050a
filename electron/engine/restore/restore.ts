import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { RestoreProgress, RestoreResult } from '../../../shared/types';
import { Semaphore } from '../concurrency';
import { throttledProgress } from '../progress';
import { chunkOffsets, type Manifest, type VersionRecord } from '../repository/format';
import type { VersionEntry, Repository } from '../repository/repository';
import { ENCODING_NONE } from '../storage/packs/format';
import type { PackedStore } from '../storage/packs/packed-store';
import { hashOfKey, ObjectNotFoundError, objectKey, readAll } from '../storage/store';
import type { ChunkHashPool } from '../workers/pool';
import type { WriteChunk, WriteTask } from '../workers/protocol';
import { prepareDestination, removeCreated } from './destination';

export interface RestoreOptions {
  /** The workers that verify the chunks and write them (see workers/write-task). */
  pool: ChunkHashPool;
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
  /** Chunk downloads in flight at once, for chunks no worker can read itself (default 64). */
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
 * at its chunks' offsets into a temp file beside its final name, every chunk's hash verified (by
 * the pool's workers), then fsynced and renamed. On any failure everything this restore created
 * is removed.
 */
export async function restore(
  repo: Repository,
  entry: VersionEntry,
  destination: string,
  options: RestoreOptions,
): Promise<RestoreResult> {
  const started = performance.now();
  const dest = resolve(destination);
  const { record } = entry;
  const targets = record.files.map((f) => safeJoin(dest, f.path));

  const destinationFolder = await prepareDestination(destination, dest);

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

  const temps = new Set<string>();
  const work = new RestoreRun(repo, options, progress, emit);
  try {
    await work.run(record.files, targets, temps);
  } catch (err) {
    // Leave the destination as it was: no partial file, no half-restored version.
    await Promise.all([...temps].map((t) => rm(t, { force: true })));
    await Promise.all(targets.map((t) => rm(t, { force: true })));
    await removeEmptyDirs(dest, destinationFolder.created.length > 0);
    await removeCreated(destinationFolder);
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
    chunks: work.chunks,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
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

  async run(files: VersionRecord['files'], targets: string[], temps: Set<string>): Promise<void> {
    const { signal } = this.options;
    const onAbort = () => this.fail(signal?.reason ?? new Error('aborted'));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort);
    const finishing: Promise<void>[] = [];
    try {
      for (const [i, file] of files.entries()) {
        if (this.failure) break;
        const manifest = await this.repo.readManifest(file.manifest);
        await this.openFiles.acquire();
        const opened = await this.open(targets[i] as string, temps).catch((err: unknown) => {
          this.openFiles.release();
          throw err;
        });
        const writes: Promise<void>[] = [];
        for (const batch of batchesOf(file.path, manifest)) {
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
          this.finish(writes, opened, targets[i] as string, temps).finally(() =>
            this.openFiles.release(),
          ),
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

  private async open(target: string, temps: Set<string>): Promise<OpenFile> {
    await mkdir(dirname(target), { recursive: true });
    const temp = join(dirname(target), `.${randomBytes(6).toString('hex')}.tv-partial`);
    temps.add(temp);
    const file: OpenFile = { temp, handle: await open(temp, 'wx'), unsynced: 0 };
    return file;
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
      this.progress.filesDone++;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Verifies and writes one batch; a pack that moved since it was located is read through get. */
  private async write(batch: Batch, fd: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const located = attempt === 0 ? await this.locate(batch) : [];
      const task = await this.task(batch, fd, located);
      const result = await this.options.pool.write(task, this.stop.signal);
      if (result.spare) this.spares.push(result.spare);
      if (result.type === 'written') return;
      const index = batch.first + ('index' in result ? result.index : 0);
      const chunk = batch.chunks[index] as Manifest['chunks'][number];
      if (result.type === 'corrupt')
        throw new RestoreError(
          `cannot restore ${batch.path}: chunk ${chunk.hash} (${span(batch, index)}) is corrupt: its content hashes to ${result.actual} (run \`tv verify --full\` to find every damaged object)`,
        );
      if (result.type === 'error')
        throw new RestoreError(`cannot write ${batch.path}: ${result.message}`);
      if (attempt > 0)
        throw new RestoreError(
          `cannot restore ${batch.path}: chunk ${chunk.hash}: ${result.message}`,
        );
    }
  }

  /** Where a local repository keeps each chunk of the batch, in a file a worker can read. */
  private async locate(batch: Batch): Promise<({ file: string; offset: number } | undefined)[]> {
    if (!this.packs || !this.local) return [];
    const hashes = batch.chunks.slice(batch.first, batch.end).map((c) => c.hash);
    const where = await this.packs.locateMany(hashes);
    // An index that disagrees with the manifest about a length, or bytes stored encoded: read
    // through the store, which reports or decodes them.
    return where.map((w, k) =>
      w?.file &&
      w.encoding === ENCODING_NONE &&
      w.length === (batch.chunks[batch.first + k] as Manifest['chunks'][number]).length
        ? { file: w.file, offset: w.offset }
        : undefined,
    );
  }

  /** The batch as a write task: located chunks by place, the others downloaded into `data`. */
  private async task(
    batch: Batch,
    fd: number,
    located: ({ file: string; offset: number } | undefined)[],
  ): Promise<WriteTask> {
    const chunks: WriteChunk[] = [];
    const fetch: number[] = [];
    for (let i = batch.first; i < batch.end; i++) {
      const { hash, length } = batch.chunks[i] as Manifest['chunks'][number];
      const from = located[i - batch.first];
      chunks.push(from ? { hash, length, from } : { hash, length });
      if (!from) fetch.push(i);
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
    if (this.packs && !this.local)
      await this.fetchRanges(batch, fetch, this.packs, data, positions, lengths);
    else {
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
  ): Promise<void> {
    this.stop.signal.throwIfAborted();
    const hashes = indexes.map((i) => (batch.chunks[i] as Manifest['chunks'][number]).hash);
    try {
      await packs.readInto(hashes, data, positions, lengths);
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

function* batchesOf(path: string, manifest: Manifest): Generator<Batch> {
  const { chunks } = manifest;
  const offsets = chunkOffsets(manifest);
  let first = 0;
  while (first < chunks.length) {
    let end = first;
    let bytes = 0;
    while (end < chunks.length && end - first < BATCH_CHUNKS && bytes < BATCH_BYTES)
      bytes += (chunks[end++] as Manifest['chunks'][number]).length;
    yield { path, chunks, offsets, first, end };
    first = end;
  }
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

/** Removes folders this restore left empty under `root` (and `root` itself if it created it). */
async function removeEmptyDirs(root: string, removeRoot: boolean): Promise<void> {
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await visit(join(dir, e.name));
    if (dir !== root || removeRoot) await rmdir(dir).catch(() => {});
  };
  await visit(root);
}
