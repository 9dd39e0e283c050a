import { mapLimit } from '../concurrency';
import { chunkOffsets, type Manifest } from '../repository/format';
import type { Repository } from '../repository/repository';
import { objectKey, readAll } from '../storage/store';
import type { ReadCounter } from './progress';

/** Chunks one read fetches at once: a 256 KiB header window from S3 in one round trip, not four. */
const FETCHES_AT_ONCE = 16;

/** Chunks a reader keeps in memory (the latest): 16 MiB at the average chunk size. */
const KEPT_CHUNKS = 256;

/** A chunk a reader needed could not be read (missing from the repository, or corrupt). */
export class ChunkReadError extends Error {
  override name = 'ChunkReadError';
}

/**
 * Reads byte ranges of one file of a version through its manifest, fetching only the chunks
 * that cover the range (and each at most once).
 */
export class FileReader {
  /** Start offset of each chunk. */
  readonly starts: number[];
  /** Chunks fetched lately, oldest first: a header is parsed front to back. */
  private readonly fetched = new Map<number, Buffer>();
  /** Every chunk this reader has read (for sameBytesRead). */
  private readonly everRead = new Set<number>();

  constructor(
    private readonly repo: Repository,
    readonly manifest: Manifest,
    /** Counts the chunks this reader fetches (a report's progress). */
    private readonly reads?: ReadCounter,
  ) {
    this.starts = chunkOffsets(manifest);
  }

  get size(): number {
    return this.manifest.size;
  }

  /** Index of the chunk starting exactly at `offset`, if one does. */
  chunkStartingAt(offset: number): number | undefined {
    const i = this.chunkAt(offset);
    return this.starts[i] === offset ? i : undefined;
  }

  /** Index of the chunk holding byte `offset`. */
  chunkAt(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Whether `other` holds the same bytes as this file wherever this reader has read: same size,
   * and the same chunks (hash and place) at every chunk read. A header parsed here parses the
   * same there.
   */
  sameBytesRead(other: FileReader): boolean {
    if (other.manifest.size !== this.manifest.size || this.everRead.size === 0) return false;
    for (const i of this.everRead)
      if (
        other.starts[i] !== this.starts[i] ||
        other.manifest.chunks[i]?.hash !== this.manifest.chunks[i]?.hash
      )
        return false;
    return true;
  }

  /** Bytes [start, end) of the file; the chunks covering them are fetched a few at once. */
  async read(start: number, end: number): Promise<Buffer> {
    end = Math.min(end, this.manifest.size);
    if (end <= start) return Buffer.alloc(0);
    const indices: number[] = [];
    for (let i = this.chunkAt(start); i < this.starts.length && this.starts[i]! < end; i++)
      indices.push(i);
    const chunks = await mapLimit(indices, FETCHES_AT_ONCE, (i) => this.chunk(i));
    const parts = chunks.map((data, k) => {
      const from = this.starts[indices[k]!]!;
      return data.subarray(Math.max(0, start - from), Math.min(data.length, end - from));
    });
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private async chunk(i: number): Promise<Buffer> {
    const cached = this.fetched.get(i);
    if (cached) return cached;
    const hash = (this.manifest.chunks[i] as { hash: string }).hash;
    let data: Buffer;
    try {
      data = await readAll(this.repo.store, objectKey(hash));
    } catch (err) {
      throw new ChunkReadError(
        `chunk ${hash} could not be read (${(err as Error).message}); run \`tv verify\``,
        { cause: err },
      );
    }
    if (this.repo.hash(data) !== hash)
      throw new ChunkReadError(
        `chunk ${hash} is corrupt (run \`tv verify --full\` to find every damaged object)`,
      );
    this.fetched.set(i, data);
    this.everRead.add(i);
    if (this.reads) {
      this.reads.bytes += data.length;
      this.reads.chunks++;
    }
    if (this.fetched.size > KEPT_CHUNKS) this.fetched.delete(this.fetched.keys().next().value!);
    return data;
  }
}
