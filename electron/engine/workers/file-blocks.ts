import { closeSync, openSync, readSync } from 'node:fs';

/**
 * A file read in blocks that are reused once nothing refers to them: no fresh memory per read,
 * so no page faults and no garbage. Every block comes back to the free list (shared by the jobs
 * of one worker), so there are never more blocks than were in use at once. A block is referred to by the reader of the stream until
 * it hands it back (recycle) and by every chunk view pinned to it (pin, unpin). Reads are
 * synchronous: this runs in a worker thread, where a read from the page cache is cheaper than a
 * trip through libuv's thread pool.
 */
export class FileBlocks implements Iterable<Uint8Array> {
  private readonly refs = new Map<ArrayBufferLike, number>();
  private fd: number | undefined;

  constructor(
    path: string,
    private position: number,
    /** Free blocks, shared by the files a worker reads one after another. */
    private readonly free: ArrayBuffer[] = [],
    private readonly blockSize = 1024 * 1024,
  ) {
    this.fd = openSync(path, 'r');
  }

  *[Symbol.iterator](): Iterator<Uint8Array> {
    try {
      while (this.fd !== undefined) {
        const block = new Uint8Array(this.free.pop() ?? new ArrayBuffer(this.blockSize));
        const n = readSync(this.fd, block, 0, this.blockSize, this.position);
        if (n === 0) return;
        this.position += n;
        this.refs.set(block.buffer, 1);
        yield block.subarray(0, n);
      }
    } finally {
      this.close();
    }
  }

  /** The stream's reader is done with this block. */
  recycle(view: Uint8Array): void {
    this.unpin(view);
  }

  /** Keeps the block under this view (if it is one of ours) from reuse until unpinned. */
  pin(view: Uint8Array): void {
    const count = this.refs.get(view.buffer);
    if (count !== undefined) this.refs.set(view.buffer, count + 1);
  }

  unpin(view: Uint8Array): void {
    const count = this.refs.get(view.buffer);
    if (count === undefined) return;
    if (count > 1) this.refs.set(view.buffer, count - 1);
    else {
      this.refs.delete(view.buffer);
      this.free.push(view.buffer as ArrayBuffer);
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
