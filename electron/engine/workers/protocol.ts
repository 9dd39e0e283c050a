import type { ChunkingParams } from '../chunking/params';
import type { HashAlgorithm } from '../hashing';
import type { CompressionScheme } from '../storage/packs/encodings';
import type { DeltaSums, ElementKind } from './delta-task';

/** Messages between the chunk-and-hash pool (main thread) and its workers. */
export interface JobStart {
  type: 'start';
  params: ChunkingParams;
  algorithm: HashAlgorithm;
  /** A file to read in the worker, or bytes the main thread will send as 'data' messages. */
  path?: string;
  /** With a path: chunk one segment of the file (see SegmentRange). */
  range?: SegmentRange;
  /** The previous version of this file's chunks (ChunkGuide.encode), to predict cuts from. */
  guide?: { key: string; chunks: SharedArrayBuffer };
  /** Chunks taken are compressed with this scheme where it pays (see storage/packs/encoding). */
  compression?: CompressionScheme;
}

/**
 * One segment of a file chunked on its own. The job starts a chunk at `start` (as if the file
 * began there) and reads on until its cut points meet those of a chunker started at `next`, the
 * following segment's start: from a common cut on, both sequences are the same, so the job stops
 * there and the following segment's job carries on. Chunk offsets are file offsets.
 */
export interface SegmentRange {
  start: number;
  /** The following segment's start; absent for the last segment (read to the end of the file). */
  next?: number;
  /**
   * How far past `next` to look for a common cut. Without one by then, the job reads to the end
   * of the file and says 'unsynced', so the segments after it can be dropped.
   */
  syncWithin?: number;
  /** Chunks starting before this offset come in batches of their own, marked `head`. */
  headUntil?: number;
}

/** Main -> worker on the job's port. */
export type ToWorker =
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'end' }
  /** Send the bytes of these chunks of a held batch, then forget the batch. */
  | { type: 'take'; batch: number; indexes: number[] }
  | { type: 'cancel' };

export interface ChunkInfo {
  offset: number;
  length: number;
  hash: string;
  /**
   * The job's guide (the parent version's file) has this chunk, so it is stored already and the
   * worker did not keep its bytes. A batch of known chunks only is not held at all.
   */
  known?: true;
}

/**
 * A batch's chunks in columns (one typed array per field, the hashes as one string of 64 hex
 * characters each): cloned between threads as a few buffers instead of an object per chunk.
 */
export interface ChunkColumns {
  offsets: Float64Array;
  lengths: Uint32Array;
  /** 1 where the chunk is `known`. */
  known: Uint8Array;
  hashes: string;
}

export function toColumns(chunks: readonly ChunkInfo[]): ChunkColumns {
  const n = chunks.length;
  const columns = {
    offsets: new Float64Array(n),
    lengths: new Uint32Array(n),
    known: new Uint8Array(n),
    hashes: '',
  };
  const hashes = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const chunk = chunks[i] as ChunkInfo;
    columns.offsets[i] = chunk.offset;
    columns.lengths[i] = chunk.length;
    if (chunk.known) columns.known[i] = 1;
    hashes[i] = chunk.hash;
  }
  columns.hashes = hashes.join('');
  return columns;
}

export function fromColumns(columns: ChunkColumns): ChunkInfo[] {
  const n = columns.lengths.length;
  const chunks = new Array<ChunkInfo>(n);
  for (let i = 0; i < n; i++) {
    const chunk: ChunkInfo = {
      offset: columns.offsets[i] as number,
      length: columns.lengths[i] as number,
      hash: columns.hashes.slice(i * 64, i * 64 + 64),
    };
    if (columns.known[i]) chunk.known = true;
    chunks[i] = chunk;
  }
  return chunks;
}

/** Worker -> main on the job's port. */
export type FromWorker =
  | {
      type: 'batch';
      batch: number;
      chunks: ChunkColumns;
      bytesRead: number;
      head?: boolean;
    }
  /** The segment found no common cut with the next one: it reads on to the end of the file. */
  | { type: 'unsynced' }
  /** With `encodings`, chunk i of `data` is stored bytes in encoding `encodings[i]` (0: as they are). */
  | { type: 'taken'; batch: number; data: Uint8Array[]; encodings?: Uint8Array }
  | { type: 'needData' }
  | { type: 'done'; bytesRead: number; predicted: number; mispredicted: number }
  | { type: 'error'; message: string; code?: string };

/** Takes at least this big come in a buffer the worker wants back (ChunkHashPool.recycle). */
export const RECYCLED_BYTES = 1 << 20;

/**
 * Main -> worker: chunks to verify and write into a file (a restore). The chunks are consecutive
 * in that file: the first lands at `position`, each next one where the previous one ends. The
 * worker hashes every chunk and writes nothing unless all of them match.
 */
export interface WriteTask {
  type: 'write';
  algorithm: HashAlgorithm;
  /** The destination's file descriptor (descriptors belong to the process, not to a thread). */
  fd: number;
  position: number;
  chunks: WriteChunk[];
  /**
   * The bytes of the chunks that have no `from`, one after another in chunk order. A view from
   * the start of an ArrayBuffer of its own is moved to the worker, and handed back in the result.
   */
  data?: Uint8Array;
}

export interface WriteChunk {
  hash: string;
  length: number;
  /** Where a local repository keeps the chunk: the worker reads it from there itself. */
  from?: { file: string; offset: number };
  /**
   * The chunk is stored encoded: its `storedLength` bytes (at `from`, or at the start of its
   * place in `data`) are decoded in the worker, then hashed. `where` names the pack and offset.
   */
  encoded?: { encoding: number; storedLength: number; where: string };
}

/** Worker -> main: what became of a WriteTask. */
export type WriteResult = (
  | { type: 'written'; bytes: number }
  /** A chunk's bytes hash to something else: nothing was written. */
  | { type: 'corrupt'; index: number; actual: string }
  /** A chunk's `from` could not be read (its pack rewritten or removed since): nothing was written. */
  | { type: 'unreadable'; index: number; message: string; code?: string }
  /** The destination could not be written. */
  | { type: 'error'; message: string; code?: string }
) & {
  /** The buffer of the task's `data`, handed back for the next task (no fresh memory per batch). */
  spare?: ArrayBuffer;
};

/** Main -> worker: the delta sums of two windows of a tensor (see delta-task). */
export interface DeltaTask {
  type: 'delta';
  kind: ElementKind;
  before: Uint8Array;
  after: Uint8Array;
}

/** Worker -> main: the sums, or why they could not be computed. */
export type DeltaResult = { type: 'sums'; sums: DeltaSums } | { type: 'error'; message: string };
