import { chunkOffsets, type Manifest } from '../repository/format';
import type { Repository } from '../repository/repository';
import type { ReadCounter } from './progress';

/** Chunks a reader keeps in memory (the latest): 16 MiB at the average chunk size. */
const KEPT_CHUNKS = 256;

/** A chunk a reader needed could not be read (missing from the repository, or corrupt). */
export class ChunkReadError extends Error {
  override name = 'ChunkReadError';
}

/**
 * Reads byte ranges of one file of a version through its manifest, fetching only the chunks
 * that cover the range (each at most once, those of one range together).
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
    const chunks = await this.chunks(indices);
    const parts = chunks.map((data, k) => {
      const from = this.starts[indices[k]!]!;
      return data.subarray(Math.max(0, start - from), Math.min(data.length, end - from));
    });
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /**
   * These chunks, each checked against its hash; those not kept are fetched together (from
   * packs, those that lie together in one ranged read; loose objects 16 at once).
   */
  private async chunks(indices: number[]): Promise<Buffer[]> {
    const missing = indices.filter((i) => !this.fetched.has(i));
    const hashes = missing.map((i) => (this.manifest.chunks[i] as { hash: string }).hash);
    const data = hashes.length > 0 ? await this.fetch(hashes) : [];
    const got = new Map<number, Buffer>();
    missing.forEach((i, k) => {
      const hash = hashes[k]!;
      if (this.repo.hash(data[k]!) !== hash)
        throw new ChunkReadError(
          `chunk ${hash} is corrupt (run \`tv verify --full\` to find every damaged object)`,
        );
      got.set(i, data[k]!);
      this.fetched.set(i, data[k]!);
      this.everRead.add(i);
      if (this.reads) {
        this.reads.bytes += data[k]!.length;
        this.reads.chunks++;
      }
      if (this.fetched.size > KEPT_CHUNKS) this.fetched.delete(this.fetched.keys().next().value!);
    });
    return indices.map((i) => got.get(i) ?? this.fetched.get(i)!);
  }

  /** Reads chunks together; when that fails, one by one to name the chunk that cannot be read. */
  private async fetch(hashes: string[]): Promise<Buffer[]> {
    try {
      return await this.repo.readObjects(hashes);
    } catch (batchError) {
      for (const hash of hashes)
        await this.repo.readObjects([hash]).catch((err: unknown) => {
          throw new ChunkReadError(
            `chunk ${hash} could not be read (${(err as Error).message}); run \`tv verify\``,
            { cause: err },
          );
        });
      throw batchError;
    }
  }
}
