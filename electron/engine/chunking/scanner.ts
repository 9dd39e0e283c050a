import type { ChunkingParams } from './params';

/**
 * Finds cut points in a byte stream fed in pieces of any size. It keeps its own state (position in
 * the current chunk and the gear hash) between pieces, so the cut points never depend on how the
 * stream was split. `push` returns the offsets, relative to the start of `data`, where a chunk
 * ends (exclusive); the bytes after the last cut belong to the next chunk.
 *
 * The algorithm (repository format 1): for each chunk, skip the first minSize bytes; then roll
 * hash = (hash << 1) + GEAR[byte] (64-bit, starting from 0) and cut after a byte when the hash has
 * `small` zero high bits (before avgSize) or `large` zero high bits (from avgSize on); cut at
 * maxSize regardless. The last chunk of a stream ends at its end.
 */
export interface CutScanner {
  readonly params: ChunkingParams;
  push(data: Uint8Array): number[];
  /** Forgets the current chunk: the next byte starts a new one. */
  reset(): void;
}
