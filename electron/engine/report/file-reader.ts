import { chunkOffsets, type Manifest } from '../repository/format';
import type { Repository } from '../repository/repository';

/**
 * Reads byte ranges of one file of a version through its manifest, fetching only the chunks
 * that cover the range (each at most once, those of one range together).
 */
export class FileReader {
  /** Start offset of each chunk. */
  readonly starts: number[];
  private readonly fetched = new Map<number, Buffer>();

  constructor(
    private readonly repo: Repository,
    readonly manifest: Manifest,
  ) {
    this.starts = chunkOffsets(manifest);
  }

  /** Index of the chunk holding byte `offset`. */
  private chunkAt(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async read(start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    const covering: number[] = [];
    for (
      let i = this.chunkAt(start);
      i < this.starts.length && (this.starts[i] as number) < end;
      i++
    )
      covering.push(i);
    await this.fetch(covering.filter((i) => !this.fetched.has(i)));
    const parts = covering.map((i) => {
      const data = this.fetched.get(i) as Buffer;
      const from = this.starts[i] as number;
      return data.subarray(Math.max(0, start - from), Math.min(data.length, end - from));
    });
    return Buffer.concat(parts);
  }

  /** Fetches chunks together (from packs: those that lie together in one ranged read). */
  private async fetch(indexes: number[]): Promise<void> {
    if (indexes.length === 0) return;
    const hashes = indexes.map((i) => (this.manifest.chunks[i] as { hash: string }).hash);
    const data = await this.repo.readObjects(hashes);
    indexes.forEach((i, k) => {
      const hash = hashes[k] as string;
      if (this.repo.hash(data[k] as Buffer) !== hash)
        throw new Error(`chunk ${hash} is corrupt (run \`tv verify\`)`);
      this.fetched.set(i, data[k] as Buffer);
    });
  }
}
