import { open } from 'node:fs/promises';
import { dedupRatio } from '../../../shared/format';
import type { PushProgress, PushResult, PushStatus } from '../../../shared/types';
import { mapLimit, Semaphore } from '../concurrency';
import { throttledProgress } from '../progress';
import {
  CHUNK_ENTRY,
  chunkCount,
  chunkEntries,
  encodedManifest,
  encodeManifest,
  manifestLength,
  validateModelName,
  type Manifest,
  type VersionRecord,
} from '../repository/format';
import { defaultAuthor, type Repository, type VersionEntry } from '../repository/repository';
import { estimatedRequestCostUsd, metered, RequestMeter } from '../storage/requests';
import { objectKey } from '../storage/store';
import { sharedGuide } from '../chunking/guided';
import type { ChunkBatch, ChunkHashJob, ChunkHashPool } from '../workers/pool';
import { chunkFile, stitchChunks } from '../workers/segments';
import type { ChunkInfo } from '../workers/protocol';
import type { FilesCache } from './files-cache';
import { DigestSet } from './digest-set';
import { CachedFiles } from './reuse';
import type { FileSource } from './sources';
import { inPathOrder, statusOf, updatedFiles } from './versions';

export interface PushOptions {
  model: string;
  files: FileSource[];
  message?: string;
  author?: string;
  pool: ChunkHashPool;
  signal?: AbortSignal;
  onProgress?: (progress: PushProgress) => void;
  /** Uploads in flight at once (default 64: uploads are latency-bound on S3). */
  uploadConcurrency?: number;
  /**
   * "per-chunk": one awaited existence check per chunk, without the parent shortcut or batching:
   * the original path, kept so the benchmark can compare against it.
   */
  existenceChecks?: 'batched' | 'per-chunk';
  /** Segment length for files chunked on several workers (tests); planned by default. */
  segmentBytes?: number;
  /** Told, per chunking job, how many chunks the parent's file predicted (tests, benchmarks). */
  onChunkingStats?: ChunkHashJob['onStats'];
  skipped?: PushResult['skipped'];
  /**
   * Write a version even when its files are identical to the latest version's (by default no
   * version is written then, as git refuses an empty commit).
   */
  allowSame?: boolean;
  /** This repository's and model's files cache: a file that looks as recorded is not read. */
  filesCache?: FilesCache;
  /** With a files cache: read every file anyway (its records are refreshed). */
  readAll?: boolean;
  /**
   * Check the chunks the parent names against the index instead of taking them as stored
   * (--no-cache: trust no cache). A chunk whose pack was lost, and dropped from the index by `tv
   * verify --full`, is then stored again: pushing the files again mends every version naming it.
   */
  checkParent?: boolean;
  /**
   * An update: the version holds the parent's files, with these files added or replaced, and
   * the paths in `remove` (files, or folders and all under them) left out.
   */
  update?: { remove: string[] };
}

export class PushCancelledError extends Error {
  override name = 'PushCancelledError';
  constructor() {
    super('push cancelled: no version was written');
  }
}

const PROGRESS_INTERVAL_MS = 100;
/** How long after S3's last throttling answer the progress still says it throttles. */
const THROTTLED_FOR_MS = 5_000;

/**
 * Makes a new version of a model from files: each file is chunked and hashed in a worker; chunks
 * the parent version names are known stored; the others are checked in batches and only the
 * missing ones uploaded; then manifests, the version record, and last its ref. Every request it
 * makes to the storage backend is counted in its result.
 */
export function push(repo: Repository, options: PushOptions): Promise<PushResult> {
  const meter = new RequestMeter();
  return metered(meter, async () => {
    const model = validateModelName(options.model);
    const listing = listParent(repo, model);
    if (options.update) await checkRemovals(listing, options.update.remove, options.files);
    const result = await withTimers(async (timers) => {
      const run = await ingest(repo, model, listing, options, false, timers);
      return publishVersion(repo, model, run, options);
    });
    return {
      ...result,
      requests: { ...meter.requests },
      uploadedBytes: meter.uploadedBytes,
      estimatedRequestCostUsd: repo.stack.blobs.remote
        ? estimatedRequestCostUsd(meter.requests)
        : null,
    };
  });
}

/** A push's result before the requests it made are added. */
type VersionPushed = Omit<PushResult, 'requests' | 'uploadedBytes' | 'estimatedRequestCostUsd'>;

/**
 * What a push of these files would do, against the model's latest version (or `against`): each
 * path added, removed, modified or unchanged, and the new bytes it would upload. Files the files
 * cache vouches for are not read; the others are chunked and checked; nothing is written.
 */
export async function pushStatus(
  repo: Repository,
  options: PushOptions & { against?: VersionEntry },
): Promise<PushStatus> {
  const model = validateModelName(options.model);
  const listing = listParent(repo, model, options.against);
  if (options.update) await checkRemovals(listing, options.update.remove, options.files);
  return withTimers(async (timers) => {
    const run = await ingest(repo, model, listing, options, true, timers);
    const files = options.update
      ? updatedFiles(run.parent?.record.files ?? [], run.files, options.update.remove)
      : run.files;
    return statusOf(model, run, files, options.skipped ?? []);
  });
}

/** Runs `work` with the interval timers it starts (progress while nothing moves), cleared after. */
async function withTimers<T>(work: (timers: Set<NodeJS.Timeout>) => Promise<T>): Promise<T> {
  const timers = new Set<NodeJS.Timeout>();
  try {
    return await work(timers);
  } finally {
    for (const timer of timers) clearInterval(timer);
  }
}

type ParentListing = Promise<{ parent: VersionEntry | undefined; files: ParentFiles }>;

/**
 * The parent (the model's latest version, or `against`) and its files' manifests. A push's
 * chunking need not wait for it: see ingest.
 */
function listParent(repo: Repository, model: string, against?: VersionEntry): ParentListing {
  const listing = (against ? Promise.resolve(against) : repo.latestVersion(model)).then(
    async (parent) => {
      const files: ParentFiles = parent ? await parentFiles(repo, parent) : new Map();
      return { parent, files };
    },
  );
  // Awaited where needed; until then a failed listing is not an unhandled rejection.
  listing.catch(() => {});
  return listing;
}

/**
 * Of the chunks the parent's files name, those the repository's index holds: a push need not
 * check those. One it lacks (its pack lost, and dropped from the index by `tv verify --full`) is
 * checked and stored again like any other, so pushing the files again (read: --no-cache) mends
 * every version naming it.
 */
async function storedParentChunks(repo: Repository, files: ParentFiles): Promise<ChunkSet> {
  const named = new Set<string>();
  for (const file of files.values()) for (const chunk of file.content.chunks) named.add(chunk.hash);
  const packs = repo.stack.packs;
  if (!packs || named.size === 0) return named;
  // After a sync no older than 30 s, and one now if the index lacks any: a chunk another
  // workstation stored since this one last looked is not taken for lost.
  const hashes = [...named];
  const located = await packs.locateMany(hashes);
  return new Set(hashes.filter((_, i) => located[i]));
}

/** A chunk's bytes read from its file again, checked against its hash. */
async function readChunkAgain(
  repo: Repository,
  source: FileSource,
  chunk: ChunkInfo,
): Promise<Uint8Array> {
  if (!source.file)
    throw new Error(
      `${source.path}: a chunk the previous version names (${chunk.hash}) is missing from the repository: push this file from a folder to store it again`,
    );
  const bytes = Buffer.alloc(chunk.length);
  const handle = await open(source.file, 'r');
  try {
    await handle.read(bytes, 0, chunk.length, chunk.offset);
  } finally {
    await handle.close();
  }
  if (repo.hash(bytes) !== chunk.hash)
    throw new Error(`${source.path} changed while it was being pushed: push again`);
  return bytes;
}

/** Refuses an update that removes what the parent does not have, or removes a file it adds. */
async function checkRemovals(
  listing: ParentListing,
  remove: readonly string[],
  files: readonly FileSource[],
): Promise<void> {
  if (remove.length === 0) return;
  const { parent } = await listing;
  updatedFiles(
    parent?.record.files ?? [],
    files.map((f) => ({ path: f.path, size: f.size, manifest: '' })),
    remove,
    parent ? `${parent.model}@v${parent.number}` : undefined,
  );
}

/** What ingesting a push's files left: each file's manifest, and which chunks were new. */
export interface Ingested {
  started: number;
  parent: VersionEntry | undefined;
  parentFiles: ParentFiles;
  /** Chunks the parent names (stored already). */
  fromParent: ChunkSet;
  /** Whether fromParent holds every chunk the parent names (none was found lost: see checkParent). */
  wholeParent: boolean;
  /** Per file given: its manifest, and its entry of the version (manifest hash, encoded). */
  manifests: Manifest[];
  files: VersionRecord['files'];
  encoded: { hash: string; bytes: Buffer; manifest: Manifest }[];
  /** Chunks this push stored (a dry run: would store). */
  uploaded: Set<string>;
  /** Stored bytes of each chunk uploaded (fewer than its length where it was compressed). */
  storedBytes: Map<string, number>;
  /** Per file given: whether the files cache vouched for it (not read). */
  fromCache: boolean[];
  cached: CachedFiles | undefined;
  progress: PushProgress;
  emit: (force?: boolean) => void;
}

/**
 * Chunks and hashes the files (those the files cache vouches for excepted), checks which chunks
 * are stored and uploads the others (a dry run only counts them), and encodes each file's
 * manifest. Nothing a version needs is missing once it returns (unless a dry run).
 */
async function ingest(
  repo: Repository,
  model: string,
  listing: ParentListing,
  options: PushOptions,
  dryRun: boolean,
  timers: Set<NodeJS.Timeout>,
): Promise<Ingested> {
  const started = performance.now();
  const { signal } = options;
  const store = repo.store;
  // The parent is the model's latest version, known once the listing answers. Chunking need not
  // wait for it: a guide only saves work (the cuts are the same with any guide or none), so while
  // the listing is on its way, the version this client listed last guides the chunking, when its
  // manifests are at hand. Which chunks are known stored waits for the real parent.
  const parentChunks = listing.then(({ files }) =>
    DigestSet.ofEntries(
      [...files.values()].map((file) => chunkEntries(file.content)),
      CHUNK_ENTRY,
    ),
  );
  parentChunks.catch(() => {});
  // With checkParent, checked against the index once a file is read (a push of files the files
  // cache vouches for only does not look): see storedParentChunks. Otherwise taken as stored: a
  // version names only durable chunks, and loading the index for every push costs its CPU.
  let storedChunks: Promise<ChunkSet> | undefined;
  const storedParent = (): Promise<ChunkSet> =>
    options.checkParent
      ? (storedChunks ??= listing.then(({ files }) => storedParentChunks(repo, files)))
      : parentChunks;
  const guides = filesAtHand(repo, repo.lastListedVersion(model)) ?? (await listing).files;
  /** The parent's file of this path as a guide, encoded only for a file this push has. */
  const guideFor = (path: string): ChunkHashJob['guide'] => {
    const file = guides.get(path);
    if (!file || chunkCount(file.content) < 2) return undefined;
    return { key: file.manifest, chunks: sharedGuide(chunkEntries(file.content)) };
  };

  const totalBytes = options.files.reduce((n, f) => n + f.size, 0);
  const progress: PushProgress = {
    phase: 'chunking',
    files: options.files.length,
    filesDone: 0,
    currentFile: null,
    totalBytes,
    bytesRead: 0,
    bytesHashed: 0,
    bytesDeduplicated: 0,
    bytesUploaded: 0,
    bytesFromCache: 0,
    chunks: 0,
    newChunks: 0,
    mbps: 0,
    etaSeconds: null,
    throttled: false,
    throttledRetries: 0,
  };
  // Retries after S3 asked to slow down, which the progress shows (the push goes on, slower).
  const throttledBefore = store.retries?.()?.throttled ?? 0;
  const onProgress = options.onProgress;
  const emit = throttledProgress(
    progress,
    totalBytes,
    (p) => p.bytesHashed,
    onProgress &&
      ((p: PushProgress) => {
        const retries = store.retries?.();
        if (retries) {
          p.throttledRetries = retries.throttled - throttledBefore;
          p.throttled =
            retries.lastThrottledAt !== null &&
            Date.now() - retries.lastThrottledAt < THROTTLED_FOR_MS;
        }
        onProgress(p);
      }),
    PROGRESS_INTERVAL_MS,
  );
  // Progress also while nothing moves (uploads waiting out a throttled S3's backoff).
  if (onProgress) timers.add(setInterval(() => emit(), 1000).unref());
  // What this push has decided about each chunk hash: stored already, or uploaded by us.
  const seen = new Set<string>();
  /** Hashes this push stored. */
  const uploaded = new Set<string>();
  const uploads = new Semaphore(options.uploadConcurrency ?? 64);
  const inFlight = new Set<Promise<void>>();
  let uploadError: unknown;

  /** Bytes each chunk this push stored takes in the repository (its stored bytes). */
  const storedBytes = new Map<string, number>();
  const upload = async (
    chunk: ChunkInfo,
    data: Uint8Array,
    encoding: number,
    settled: () => void,
  ) => {
    await uploads.acquire();
    const putOptions = {
      ...repo.putOptions(chunk.hash),
      ...(encoding !== 0 ? { encoded: { encoding, length: chunk.length } } : {}),
    };
    storedBytes.set(chunk.hash, data.length);
    const task = store
      .put(objectKey(chunk.hash), data, putOptions)
      .then(
        () => {
          progress.bytesUploaded += chunk.length;
          emit();
        },
        (err: unknown) => {
          uploadError ??= err;
        },
      )
      .finally(() => {
        uploads.release();
        inFlight.delete(task);
        settled();
      });
    inFlight.add(task);
  };

  /** Takes the bytes of the chunks no one holds yet from the worker, and uploads them. */
  const uploadMissing = async (batch: ChunkBatch, missing: number[], source: FileSource) => {
    if (dryRun) return countMissing(batch, missing);
    // A chunk the guide (the parent's file) knows was not kept by the worker: it is missing only
    // where the repository lost it, and is read from the file again.
    const lost = missing.filter((i) => batch.chunks[i]?.known);
    const kept = lost.length > 0 ? missing.filter((i) => !batch.chunks[i]?.known) : missing;
    const data = await batch.take(kept);
    // The chunks share one buffer, which goes back to the workers once every upload of them
    // settled (a store keeps no reference to the bytes it was given).
    let unsettled = kept.length;
    const settled = () => --unsettled === 0 && options.pool.recycle(data);
    for (const [k, i] of kept.entries()) {
      const chunk = batch.chunks[i] as ChunkInfo;
      uploaded.add(chunk.hash);
      progress.newChunks++;
      if (uploadError) throw uploadError;
      await upload(chunk, data[k] as Uint8Array, data.encodings?.[k] ?? 0, settled);
    }
    for (const i of lost) {
      const chunk = batch.chunks[i] as ChunkInfo;
      const bytes = await readChunkAgain(repo, source, chunk);
      uploaded.add(chunk.hash);
      progress.newChunks++;
      if (uploadError) throw uploadError;
      await upload(chunk, bytes, 0, () => {});
    }
  };

  /** A dry run: the chunks no one holds yet are counted, their bytes dropped. */
  const countMissing = async (batch: ChunkBatch, missing: number[]) => {
    await batch.take([]);
    for (const i of missing) {
      uploaded.add((batch.chunks[i] as ChunkInfo).hash);
      progress.newChunks++;
    }
  };

  const perChunk = options.existenceChecks === 'per-chunk';
  /**
   * ADR-012: chunks the parent does not name are checked through the store's hasMany, batched. With
   * a Redis cache, Redis answers for the chunks it knows and only its misses go to the backend
   * (HEADs on S3, an index lookup where the backend keeps one), whose answers are written back to
   * Redis: a chunk that fell out of the cache (flushed, restarted, expired) is not uploaded again.
   */
  const existence = (hashes: string[]): Promise<boolean[]> => store.hasMany(hashes.map(objectKey));
  const settle = async (batch: ChunkBatch, source: FileSource) => {
    if (perChunk) return settleOneByOne(batch, source);
    // Chunks the parent version names (and the index holds) are stored already: no existence
    // check needed for them.
    const fromParent = await storedParent();
    let stored = 0;
    const unknown: number[] = [];
    batch.chunks.forEach((chunk, i) => {
      if (fromParent.has(chunk.hash) || seen.has(chunk.hash)) {
        stored += chunk.length;
      } else {
        seen.add(chunk.hash);
        unknown.push(i);
      }
    });
    const exists =
      unknown.length > 0
        ? await existence(unknown.map((i) => (batch.chunks[i] as ChunkInfo).hash))
        : [];
    const missing: number[] = [];
    unknown.forEach((i, k) => {
      if (exists[k]) stored += (batch.chunks[i] as ChunkInfo).length;
      else missing.push(i);
    });
    progress.bytesDeduplicated += stored;
    await uploadMissing(batch, missing, source);
    // While most chunks are stored already, the few new ones go up as the push goes, not all
    // after its last chunk.
    if (!dryRun) repo.stack.packs?.passedOver(stored);
  };

  const settleOneByOne = async (batch: ChunkBatch, source: FileSource) => {
    const missing: number[] = [];
    for (const [i, chunk] of batch.chunks.entries()) {
      if (!seen.has(chunk.hash) && !(await store.has(objectKey(chunk.hash)))) missing.push(i);
      else progress.bytesDeduplicated += chunk.length;
      seen.add(chunk.hash);
    }
    await uploadMissing(batch, missing, source);
  };

  const cached = options.filesCache
    ? new CachedFiles(options.filesCache, !options.readAll, repo, listing, existence)
    : undefined;
  const fromCache = options.files.map(() => false);

  const ingestFile = async (source: FileSource, index: number): Promise<Manifest> => {
    progress.currentFile = source.path;
    const reused = await cached?.manifestFor(source);
    if (reused) {
      fromCache[index] = true;
      progress.bytesHashed += reused.size;
      progress.bytesDeduplicated += reused.size;
      progress.bytesFromCache += reused.size;
      progress.chunks += chunkCount(reused);
      progress.filesDone++;
      emit();
      return reused;
    }
    return chunkSource(source);
  };

  const chunkSource = async (source: FileSource): Promise<Manifest> => {
    const cut: ChunkInfo[] = [];
    // A stream cannot be read again: checking the parent's chunks (one may be lost), its worker
    // keeps every chunk's bytes, guided by nothing (a guide's known chunks come without them).
    const guide = options.checkParent && !source.file ? undefined : guideFor(source.path);
    const common = {
      params: repo.chunking,
      algorithm: repo.config.hash,
      ...(signal ? { signal } : {}),
      ...(guide ? { guide } : {}),
      ...(options.onChunkingStats ? { onStats: options.onChunkingStats } : {}),
      ...(repo.compression !== 'none' ? { compression: repo.compression } : {}),
    };
    // A file on disk is chunked on every worker at once (in segments); a stream on one.
    const batches = source.file
      ? chunkFile(options.pool, {
          ...common,
          path: source.file,
          size: source.size,
          ...(options.segmentBytes ? { segmentBytes: options.segmentBytes } : {}),
        })
      : options.pool.run({
          ...common,
          source: (source.stream as NonNullable<FileSource['stream']>)(),
        });
    let read = 0;
    for await (const batch of batches) {
      progress.bytesRead += batch.bytesRead - read;
      read = batch.bytesRead;
      for (const chunk of batch.chunks) {
        cut.push(chunk);
        progress.bytesHashed += chunk.length;
      }
      progress.chunks += batch.chunks.length;
      await settle(batch, source);
      emit();
    }
    // Chunks in file order: a file's segments are put together; a stream's come in order.
    const inOrder = source.file ? stitchChunks(cut, source.size) : cut;
    const end = cut.reduce((n, c) => Math.max(n, c.offset + c.length), 0);
    if (!inOrder || (source.file && end !== source.size)) {
      throw new Error(
        `${source.path} changed while it was being pushed (${source.size} bytes when listed, ${end} read): push again`,
      );
    }
    progress.filesDone++;
    emit();
    const chunks = inOrder.map((c) => ({ hash: c.hash, length: c.length }));
    const digests = Buffer.concat(chunks.map((c) => Buffer.from(c.hash, 'hex')));
    return { size: end, fileHash: repo.hash(digests), chunks };
  };

  const manifests: Manifest[] = new Array(options.files.length);
  try {
    // Files one after another; each file's chunking and hashing runs in a worker while this
    // thread checks and uploads the previous batches.
    const concurrentFiles = Math.max(1, options.pool.size);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrentFiles, options.files.length) }, async () => {
        while (next < options.files.length) {
          const index = next++;
          manifests[index] = await ingestFile(options.files[index] as FileSource, index);
        }
      }),
    );
    while (inFlight.size > 0) await Promise.all([...inFlight]);
    if (uploadError) throw uploadError;
  } catch (err) {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    if (signal?.aborted) throw new PushCancelledError();
    throw err;
  }
  if (signal?.aborted) throw new PushCancelledError();

  const { parent, files: parentFilesByPath } = await listing;
  const fromParent = await (storedChunks ?? parentChunks);
  const wholeParent = storedChunks === undefined;
  progress.phase = 'finishing';
  progress.currentFile = null;
  emit(true);
  const files: VersionRecord['files'] = [];
  const encoded: Ingested['encoded'] = [];
  for (const [i, manifest] of manifests.entries()) {
    // A manifest read from the repository (reused) is written as it was read.
    const read = encodedManifest(manifest);
    const bytes = read?.bytes ?? encodeManifest(manifest, repo.config.hash);
    const hash = read?.hash ?? repo.hash(bytes);
    encoded.push({ hash, bytes, manifest });
    files.push({
      path: (options.files[i] as FileSource).path,
      size: manifest.size,
      manifest: hash,
    });
  }
  return {
    started,
    parent,
    parentFiles: parentFilesByPath,
    fromParent,
    wholeParent,
    manifests,
    files,
    encoded,
    uploaded,
    storedBytes,
    fromCache,
    cached,
    progress,
    emit,
  };
}

/**
 * Writes the version: its files (with an update, the parent's with these added, replaced or
 * removed), figures and record, unless it is identical to the parent; then the files cache.
 */
async function publishVersion(
  repo: Repository,
  model: string,
  run: Ingested,
  options: PushOptions,
): Promise<VersionPushed> {
  const { parent, progress, emit, signal } = { ...run, signal: options.signal };
  // In path order, as a folder is walked, whatever order streams came in (the app's uploads).
  const files = options.update
    ? updatedFiles(parent?.record.files ?? [], run.files, options.update.remove)
    : [...run.files].sort(inPathOrder);
  const stats = versionStats(run, files);
  const record: VersionRecord = {
    format: 1,
    kind: 'version',
    model,
    parent: parent?.id ?? null,
    createdAt: new Date().toISOString(),
    author: options.author ?? defaultAuthor(),
    message: options.message ?? '',
    files,
    stats: { ...stats, seconds: Math.round((performance.now() - run.started) / 10) / 100 },
  };
  const cachedBytes = run.manifests.reduce((n, m, i) => n + (run.fromCache[i] ? m.size : 0), 0);
  const result = (entry: VersionEntry, created: boolean): VersionPushed => ({
    model,
    version: `v${entry.number}`,
    number: entry.number,
    id: entry.id,
    shortId: entry.id.slice(0, 12),
    files: files.length,
    ...record.stats,
    dedupRatio: dedupRatio(stats.logicalBytes, stats.newBytes),
    createdRepository: repo.created,
    skipped: options.skipped ?? [],
    created,
    identicalTo: created
      ? null
      : { version: `v${entry.number}`, id: entry.id, shortId: entry.id.slice(0, 12) },
    filesFromCache: run.fromCache.filter(Boolean).length,
    bytesFromCache: cachedBytes,
    update: options.update ? updateSummary(parent, run.files, files) : null,
  });
  if (parent && !options.allowSame && sameFiles(parent.record.files, files)) {
    // No version, but chunks it stored (lost ones, stored again by --no-cache) are kept.
    if (run.uploaded.size > 0) await repo.storeDurably([...run.uploaded]);
    await run.cached?.save(options.files, run.files);
    progress.phase = 'done';
    emit(true);
    return result(parent, false);
  }
  // The manifests upload together, and beside the version record (publish waits for them),
  // each as an object of its own (read without an index). A manifest the parent names is stored
  // already (an unchanged file's): it is not written again.
  const held = new Set([...run.parentFiles.values()].map((f) => f.manifest));
  const manifestsStored = run.encoded.flatMap((e) => (held.has(e.hash) ? [] : [e.hash]));
  const stored = Promise.all(
    run.encoded.map(({ hash, bytes, manifest }) =>
      held.has(hash)
        ? repo.rememberManifest(hash, manifest)
        : repo.store
            .put(objectKey(hash), bytes, { ...repo.putOptions(hash), loose: true })
            .then(() => repo.rememberManifest(hash, manifest)),
    ),
  );
  if (signal?.aborted) {
    await stored.catch(() => {});
    throw new PushCancelledError();
  }
  const entry = await repo.publish(record, stored, [...run.uploaded, ...manifestsStored]);
  await run.cached?.save(options.files, run.files);
  progress.chunks = stats.chunks;
  progress.newChunks = stats.newChunks;
  progress.phase = 'done';
  emit(true);
  return result(entry, true);
}

/**
 * A version's figures, from its files' manifests: the files this push read or reused, and (an
 * update) those it kept from the parent. A chunk a segment cut that is not one of the file's
 * (rare; see chunkFile) may have been stored, but it is not counted.
 */
function versionStats(
  run: Ingested,
  files: VersionRecord['files'],
): Omit<VersionRecord['stats'], 'seconds'> {
  const pushed = new Map(run.encoded.map((e) => [e.hash, e.manifest]));
  const kept = new Map([...run.parentFiles.values()].map((f) => [f.manifest, f.content]));
  const counted = new Set<string>();
  let logicalBytes = 0;
  let newBytes = 0;
  let storedBytes = 0;
  let reusedFromParentBytes = 0;
  let chunks = 0;
  let metadataBytes = 0;
  for (const file of files) {
    const manifest = pushed.get(file.manifest) ?? kept.get(file.manifest);
    const count = manifest ? chunkCount(manifest) : 0;
    logicalBytes += file.size;
    metadataBytes += manifestLength(count);
    chunks += count;
    // A parent's file: each of its chunks is one the parent names (when none was found lost).
    if (run.wholeParent && kept.has(file.manifest)) {
      reusedFromParentBytes += manifest?.size ?? 0;
      continue;
    }
    for (const chunk of manifest?.chunks ?? []) {
      if (run.fromParent.has(chunk.hash)) reusedFromParentBytes += chunk.length;
      else if (run.uploaded.has(chunk.hash) && !counted.has(chunk.hash)) {
        counted.add(chunk.hash);
        newBytes += chunk.length;
        storedBytes += run.storedBytes.get(chunk.hash) ?? chunk.length;
      }
    }
  }
  return {
    logicalBytes,
    newBytes,
    storedBytes,
    reusedBytes: logicalBytes - newBytes,
    reusedFromParentBytes,
    chunks,
    newChunks: counted.size,
    metadataBytes,
  };
}

/** What an update did to the parent's files. */
function updateSummary(
  parent: VersionEntry | undefined,
  given: VersionRecord['files'],
  files: VersionRecord['files'],
): NonNullable<PushResult['update']> {
  const before = new Map((parent?.record.files ?? []).map((f) => [f.path, f.manifest]));
  const after = new Set(files.map((f) => f.path));
  return {
    added: given.filter((f) => !before.has(f.path)).map((f) => f.path),
    replaced: given
      .filter((f) => before.has(f.path) && before.get(f.path) !== f.manifest)
      .map((f) => f.path),
    unchanged: given.filter((f) => before.get(f.path) === f.manifest).map((f) => f.path),
    removed: [...before.keys()].filter((p) => !after.has(p)),
    kept: files.length - given.length,
  };
}

/** Whether two versions hold the same files: the same paths with the same content. */
function sameFiles(a: VersionRecord['files'], b: VersionRecord['files']): boolean {
  if (a.length !== b.length) return false;
  const manifests = new Map(a.map((f) => [f.path, f.manifest]));
  return b.every((f) => manifests.get(f.path) === f.manifest);
}

/** A version's files by path: each one's manifest hash, and the manifest. */
export type ParentFiles = Map<string, { manifest: string; content: Manifest }>;

/** A set of chunk hashes (hex), as a Set or a DigestSet. */
type ChunkSet = { has(hash: string): boolean };

/** A version's files by path, with their manifests (read 16 at a time). */
async function parentFiles(repo: Repository, version: VersionEntry): Promise<ParentFiles> {
  const { files } = version.record;
  return filesByPath(files, await mapLimit(files, 16, (file) => repo.readManifest(file.manifest)));
}

/** A version's files by path, when every manifest of it is at hand (no request); else undefined. */
function filesAtHand(repo: Repository, version: VersionEntry | undefined): ParentFiles | undefined {
  if (!version) return undefined;
  const { files } = version.record;
  const manifests = files.map((file) => repo.manifestAtHand(file.manifest));
  return manifests.every((m) => m !== undefined) ? filesByPath(files, manifests) : undefined;
}

/** Files by path with their manifests (`manifests[i]` is `files[i]`'s). */
function filesByPath(files: VersionRecord['files'], manifests: readonly Manifest[]): ParentFiles {
  return new Map(
    files.map((file, i) => [
      file.path,
      { manifest: file.manifest, content: manifests[i] as Manifest },
    ]),
  );
}
