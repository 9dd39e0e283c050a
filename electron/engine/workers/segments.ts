import { MiB, type ChunkingParams } from '../chunking/params';
import type { HashAlgorithm } from '../hashing';
import type { ChunkBatch, ChunkHashJob, ChunkHashPool, TakenChunks } from './pool';
import type { ChunkInfo, SegmentRange } from './protocol';

// A big file is chunked on every worker at once: it is cut into segments, and each segment's job
// starts a chunk at the segment's start as if the file began there. Content-defined cut points
// resynchronise: a few chunks past the next segment's start, the two jobs cut at the same offset,
// and from a common cut on their chunks are identical. So each job reads on past its segment's
// end until it meets a cut of the next job's sequence (which it finds with a second scanner over
// the same bytes), and stops there. The chunks are exactly those a single pass would cut: a chunk
// is decided by its start offset and the bytes from there on, and every chunk of the file is then
// cut by some job at its true start (see stitchChunks).
//
// The next job's first chunks (its "head", up to a few hundred KiB in practice) start before the
// common cut and are not chunks of the file; their batches are held back until the previous job
// has said where it stopped, and only the chunks from there on are passed on. On data where the
// sequences never meet (long periodic runs whose period does not divide the distance), a job
// gives up after `syncWithin` bytes, reads to the end of the file alone, and the segments after
// it are dropped: correct, and no slower than one worker.

export interface FileChunkJob {
  path: string;
  /** The file's size when listed. */
  size: number;
  params: ChunkingParams;
  algorithm: HashAlgorithm;
  signal?: AbortSignal;
  /** Segment length (tests); by default planned from the file size and the pool size. */
  segmentBytes?: number;
  /** How far past a segment's end to look for the common cut (tests); see segmentLimits. */
  syncWithin?: number;
  /** The previous version of the file, to predict cuts from (see chunking/guided). */
  guide?: ChunkHashJob['guide'];
  onStats?: ChunkHashJob['onStats'];
  compression?: ChunkHashJob['compression'];
}

/** Window and search lengths for a chunking profile. */
export function segmentLimits(params: ChunkingParams): {
  syncWithin: number;
  headWindow: number;
  minSegment: number;
} {
  // Measured on random data with the 64 KiB profile: the sequences meet a median 112 KiB and at
  // most ~630 KiB past the next segment's start. The search allows more than ten times that.
  const syncWithin = Math.max(8 * MiB, 32 * params.maxSize);
  return { syncWithin, headWindow: 32 * params.avgSize, minSegment: 4 * syncWithin };
}

/** The segments of a file: one for a small file or a single worker; starts at multiples of maxSize. */
export function planSegments(
  size: number,
  params: ChunkingParams,
  workers: number,
  segmentBytes?: number,
  syncWithinBytes?: number,
): SegmentRange[] {
  const limits = segmentLimits(params);
  const { headWindow, minSegment } = limits;
  const syncWithin = syncWithinBytes ?? limits.syncWithin;
  // Several segments per worker, so the last ones to finish are short; none shorter than
  // minSegment; starts on multiples of maxSize (a long run of zeros is then cut alike).
  const wanted =
    segmentBytes ?? Math.max(minSegment, Math.min(256 * MiB, Math.ceil(size / (workers * 8))));
  const count = workers < 2 && segmentBytes === undefined ? 1 : Math.round(size / wanted);
  if (count < 2) return [{ start: 0 }];
  // Rounded down: the last segment takes what is left, a little more than the others.
  const length = Math.max(1, Math.floor(size / count / params.maxSize)) * params.maxSize;
  return Array.from({ length: count }, (_, k) => {
    const start = k * length;
    const range: SegmentRange = { start };
    if (k > 0) range.headUntil = start + headWindow;
    if (k < count - 1) {
      range.next = start + length;
      range.syncWithin = syncWithin;
    }
    return range;
  });
}

/**
 * The file's chunks in order, from every chunk any segment's job cut: from offset 0, the next
 * chunk is the one that starts where the last one ended. Throws when no chunk starts there (the
 * file changed while its segments were read).
 */
export function stitchChunks(chunks: Iterable<ChunkInfo>, size: number): ChunkInfo[] | undefined {
  const byOffset = new Map<number, ChunkInfo>();
  for (const chunk of chunks) byOffset.set(chunk.offset, chunk);
  const out: ChunkInfo[] = [];
  let at = 0;
  while (at < size) {
    const chunk = byOffset.get(at);
    if (!chunk) return undefined;
    out.push(chunk);
    at += chunk.length;
  }
  return at === size ? out : undefined;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Chunks and hashes a file on the pool's workers, a segment each, and yields the batches as they
 * come (from any segment, in no particular order; `bytesRead` is the total read so far). Collect
 * the chunks and put them in order with stitchChunks. A batch's take works as with pool.run.
 */
export async function* chunkFile(
  pool: ChunkHashPool,
  job: FileChunkJob,
): AsyncGenerator<ChunkBatch> {
  const ranges = planSegments(job.size, job.params, pool.size, job.segmentBytes, job.syncWithin);
  const base = {
    params: job.params,
    algorithm: job.algorithm,
    path: job.path,
    ...(job.guide ? { guide: job.guide } : {}),
    ...(job.onStats ? { onStats: job.onStats } : {}),
    ...(job.compression ? { compression: job.compression } : {}),
  };
  if (ranges.length === 1) {
    yield* pool.run({ ...base, ...(job.signal ? { signal: job.signal } : {}) });
    return;
  }

  const queue: ChunkBatch[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const stop = new AbortController();
  const signal = job.signal ? AbortSignal.any([job.signal, stop.signal]) : stop.signal;
  /** Where each segment's job stopped: the end of its last chunk. */
  const ends = ranges.map(() => deferred<number>());
  const aborts = ranges.map(() => new AbortController());
  /** Segments from this index on are dropped: an earlier one reads to the end of the file. */
  let dropFrom = ranges.length;
  const lastRead = ranges.map(() => 0);
  let totalRead = 0;
  const tasks = new Set<Promise<void>>();
  const track = (task: Promise<void>) => {
    tasks.add(task);
    void task.finally(() => {
      tasks.delete(task);
      notify();
    });
  };
  const fail = (err: unknown) => {
    failure ??= err;
    stop.abort();
    // Heads waiting for a segment's end wait no more (they pass nothing on after a failure).
    for (const end of ends) end.resolve(job.size);
    notify();
  };
  /** With `k`: a batch whose bytes are still in segment k's worker. */
  const enqueue = (batch: ChunkBatch, k?: number) => {
    if (k !== undefined) passedOn[k] = true;
    queue.push(batch);
    notify();
  };
  /** Segments that have passed a batch on: stopping them would fail the takes of those. */
  const passedOn = ranges.map(() => false);
  const drop = (from: number) => {
    if (from >= dropFrom) return;
    const stopping = [];
    for (let k = from; k < dropFrom; k++) {
      ends[k]?.resolve(job.size);
      // One that has passed nothing on yet is stopped; one that has runs to its own end (its
      // chunks are chunks of the file or harmless extras; see stitchChunks).
      if (!passedOn[k]) stopping.push(k);
    }
    dropFrom = from;
    for (const k of stopping) aborts[k]?.abort();
  };

  /** A head batch waits for the previous segment's end; chunks from there on are passed on. */
  const holdHead = (k: number, batch: ChunkBatch) => {
    // The bytes are taken now (the worker moves on); a known chunk's were not kept.
    const all = batch.chunks.map((_, i) => i);
    const held = all.filter((i) => !batch.chunks[i]?.known);
    const taking = batch.take(held);
    track(
      Promise.all([taking, (ends[k - 1] as Deferred<number>).promise]).then(
        ([data, previousEnd]) => {
          if (k >= dropFrom || failure !== undefined || stop.signal.aborted) return;
          const bytesOf = new Map(
            held.map((i, n) => [
              i,
              { bytes: data[n] as Uint8Array, encoding: data.encodings?.[n] },
            ]),
          );
          const keep = all.filter((i) => (batch.chunks[i] as ChunkInfo).offset >= previousEnd);
          if (keep.length === 0) return;
          let taken = false;
          enqueue({
            chunks: keep.map((i) => batch.chunks[i] as ChunkInfo),
            bytesRead: totalRead,
            take: (indexes) => {
              if (taken) return Promise.reject(new Error('a head batch was already taken'));
              taken = true;
              const out: TakenChunks = [];
              const encodings = new Uint8Array(indexes.length);
              for (const [n, i] of indexes.entries()) {
                const held = bytesOf.get(keep[i] as number);
                if (!held)
                  return Promise.reject(new Error(`chunk ${i} of a head batch has no bytes`));
                out.push(held.bytes);
                encodings[n] = held.encoding ?? 0;
              }
              if (data.encodings) out.encodings = encodings;
              return Promise.resolve(out);
            },
          });
        },
        (err: unknown) => {
          // A dropped segment's job is stopped, and its head with it.
          if (k < dropFrom) fail(err);
        },
      ),
    );
  };

  const runSegment = async (k: number): Promise<void> => {
    const range = ranges[k] as SegmentRange;
    const segmentSignal = AbortSignal.any([signal, (aborts[k] as AbortController).signal]);
    let end = range.start;
    try {
      for await (const batch of pool.run({
        ...base,
        range,
        signal: segmentSignal,
        onUnsynced: () => drop(k + 1),
      })) {
        totalRead += batch.bytesRead - (lastRead[k] as number);
        lastRead[k] = batch.bytesRead;
        const last = batch.chunks.at(-1);
        if (last) end = last.offset + last.length;
        if (batch.head && k > 0) holdHead(k, batch);
        else enqueue({ ...batch, bytesRead: totalRead }, k);
      }
      (ends[k] as Deferred<number>).resolve(end);
    } catch (err) {
      if (k >= dropFrom && !job.signal?.aborted && !stop.signal.aborted) return;
      throw err;
    }
  };

  // Segments start in order, as many at once as the pool has workers: a segment waiting for a
  // worker never holds one back from the segment before it.
  let started = 0;
  let running = 0;
  const startMore = () => {
    while (started < Math.min(dropFrom, ranges.length) && running < pool.size) {
      const k = started++;
      running++;
      track(
        runSegment(k)
          .catch(fail)
          .finally(() => running--),
      );
    }
  };

  try {
    for (;;) {
      if (failure) throw failure;
      startMore();
      const batch = queue.shift();
      if (batch) {
        yield batch;
        continue;
      }
      if (tasks.size === 0 && started >= Math.min(dropFrom, ranges.length)) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    if (failure) throw failure;
  } finally {
    stop.abort();
    for (const end of ends) end.resolve(job.size);
    for (const batch of queue.splice(0)) void batch.take([]).catch(() => {});
    await Promise.allSettled([...tasks]);
  }
}
